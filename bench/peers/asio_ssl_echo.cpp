// SPDX-License-Identifier: MIT
// TLS echo server in standalone Asio with C++20 coroutines, for bench/compare.py: asio_echo.cpp
// with an ssl::stream<tcp::socket> in place of the socket. One io_context run by one thread
// (concurrency hint 1), one coroutine per connection that does the server handshake, then reads
// into a 16 KiB buffer in its own frame and writes it back. Asio drives OpenSSL over memory BIOs;
// each stream also holds Asio's two 17 KiB record buffers, so an idle connection owns those, the
// frame's 16 KiB and OpenSSL's connection state.
//
// Server settings, the same in every TLS peer: TLS 1.2 minimum, OpenSSL's default ciphers and
// groups, session tickets on (OpenSSL's default), no client certificate requested, and
// SSL_MODE_RELEASE_BUFFERS (OpenSSL's own record buffers are freed while a connection is idle).
//
//   asio_ssl_echo PORT CERT_CHAIN.pem KEY.pem
//       PORT 0: the kernel picks; prints "listening on 127.0.0.1:PORT"
#include <asio.hpp>
#include <asio/ssl.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <system_error>
#include <utility>

namespace {

using asio::ip::tcp;

asio::awaitable<void> echo(tcp::socket socket, asio::ssl::context& tls) {
  asio::ssl::stream<tcp::socket> stream(std::move(socket), tls);
  std::error_code error;  // errors end the loop instead of throwing: no co_await in a catch
  auto token = asio::redirect_error(asio::use_awaitable, error);
  co_await stream.async_handshake(asio::ssl::stream_base::server, token);
  char data[16384];
  while (!error) {
    const std::size_t n = co_await stream.async_read_some(asio::buffer(data), token);
    if (!error) co_await asio::async_write(stream, asio::buffer(data, n), token);
  }
  // eof is the client's close_notify: answer it with ours. Anything else (a reset, a TCP EOF
  // without close_notify: stream_truncated, a failed handshake) just closes with the frame.
  if (error == asio::error::eof) co_await stream.async_shutdown(token);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, asio::ssl::context& tls) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), echo(std::move(socket), tls), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: asio_ssl_echo PORT CERT_CHAIN.pem KEY.pem\n");
    return 2;
  }
  const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  asio::ssl::context tls(asio::ssl::context::tls_server);  // verify_none: no client certificate
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_mode(tls.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  tls.use_certificate_chain_file(argv[2]);  // throws, and the process says why, when unusable
  tls.use_private_key_file(argv[3], asio::ssl::context::pem);
  asio::io_context context(1);
  tcp::acceptor acceptor(context, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::printf("listening on 127.0.0.1:%u\n",
              static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  asio::co_spawn(context, listen(acceptor, tls), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);  // accept failed: let the process say why
  });
  context.run();
}
