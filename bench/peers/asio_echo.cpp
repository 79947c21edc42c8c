// SPDX-License-Identifier: MIT
// Echo server in standalone Asio with C++20 coroutines, for bench/compare.py: one io_context run
// by one thread (concurrency hint 1), one coroutine per connection that reads into a buffer in its
// own frame and writes it back. That is the shape of Asio's coroutine echo example; the buffer is
// 16 KiB, as large as the bulk scenario's writes, so each idle connection's frame holds 16 KiB.
//
//   asio_echo [PORT]     0 or nothing: the kernel picks; prints "listening on 127.0.0.1:PORT"
#include <asio.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

namespace {

using asio::ip::tcp;

asio::awaitable<void> echo(tcp::socket socket) {
  try {
    char data[16384];
    for (;;) {
      const std::size_t n =
          co_await socket.async_read_some(asio::buffer(data), asio::use_awaitable);
      co_await asio::async_write(socket, asio::buffer(data, n), asio::use_awaitable);
    }
  } catch (const std::exception&) {
    // End of stream or a reset: the connection is over and the socket closes with the frame.
  }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
  asio::io_context context(1);
  tcp::acceptor acceptor(context, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::printf("listening on 127.0.0.1:%u\n",
              static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  asio::co_spawn(context, listen(acceptor), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);  // accept failed: let the process say why
  });
  context.run();
}
