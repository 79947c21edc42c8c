// SPDX-License-Identifier: MIT
// AsyncTCPServer over TLS: the handler unchanged, the handshake in the connection's task under a
// total deadline, the oldest handshake dropped at max_handshakes, PROXY before the ClientHello,
// clean close vs truncation, reload, and the async TLS client (open_connection with a context).
#include <sockserv/aio/connection.hpp>
#include <sockserv/aio/server.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket_file.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include "support/aio_serving.hpp"
#include "support/test_support.hpp"
#include "support/tls_certs.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::Serving;

class AsyncTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tls_available() || !test::have_openssl()) GTEST_SKIP() << "no TLS or no openssl command";
    certs_ = test::make_tls_certs(dir_.path());
  }

  std::shared_ptr<const SSLContext> server_context(const std::string& cert,
                                                   const std::string& key) const {
    auto ctx = create_default_context(Purpose::CLIENT_AUTH);
    ctx.load_cert_chain(cert, key);
    return std::make_shared<const SSLContext>(std::move(ctx));
  }

  // The seed's upper-case handler, as a coroutine, unchanged for TLS; it notes how it ended.
  std::unique_ptr<aio::AsyncTCPServer> upper_server() {
    auto server = std::make_unique<aio::AsyncTCPServer>(
        test::loopback4(),
        [this](aio::Connection conn) -> aio::Task<void> {
          try {
            for (std::string line; !(line = co_await conn.readline()).empty();) {
              for (char& c : line)
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
              co_await conn.sendall(line);
            }
            clean_ends_ += 1;
          } catch (const SSLEOFError&) {
            truncated_ends_ += 1;
          }
        },
        false);
    server->threads = 1;
    server->set_ssl_context(server_context(certs_.server_cert, certs_.server_key));
    server->bind_and_activate();
    return server;
  }

  SSLSocket connect_tls(const Address& address) const {
    const auto ctx = create_default_context(Purpose::SERVER_AUTH, certs_.ca_cert);
    Socket sock = test::connect_to(address);
    sock.settimeout(10s);
    return ctx.wrap_socket(std::move(sock), false, "localhost");
  }

  test::TempDir dir_;
  test::TlsCerts certs_;
  std::atomic<int> clean_ends_{0};
  std::atomic<int> truncated_ends_{0};
};

TEST_F(AsyncTlsTest, UpperCaseHandlerRunsUnchangedOverTls) {
  auto server = upper_server();
  Serving serving(*server);
  auto tls = connect_tls(server->server_address);
  tls.sendall("hello\nworld\n");
  SocketFile in(tls);
  EXPECT_EQ(in.readline(), "HELLO\n");
  EXPECT_EQ(in.readline(), "WORLD\n");
  EXPECT_EQ(tls.version().substr(0, 4), "TLSv");
  tls.shutdown(SHUT_WR);  // close_notify: the handler's readline() sees a clean EOF
  EXPECT_EQ(in.readline(), "");
  EXPECT_TRUE(test::eventually([&] { return clean_ends_ == 1; }));
  EXPECT_TRUE(test::eventually([&] { return server->stats.snapshot().tls_handshakes == 1; }));
}

TEST_F(AsyncTlsTest, TruncationIsReportedNotASilentEof) {
  auto server = upper_server();
  Serving serving(*server);
  {
    auto tls = connect_tls(server->server_address);
    tls.sendall("x\n");
    SocketFile in(tls);
    EXPECT_EQ(in.readline(), "X\n");
  }  // closed without close_notify
  EXPECT_TRUE(test::eventually([&] { return truncated_ends_ == 1; }));
  EXPECT_EQ(clean_ends_, 0);
}

TEST_F(AsyncTlsTest, SilentConnectionsCannotHoldEveryHandshakeSlot) {
  auto server = upper_server();
  server->max_handshakes = 8;
  Serving serving(*server);
  std::vector<Socket> silent;
  for (int i = 0; i < 60; ++i) silent.push_back(test::connect_to(server->server_address));
  // Each newcomer drops the oldest silent one: a real client still gets through at once.
  auto tls = connect_tls(server->server_address);
  tls.sendall("still served\n");
  SocketFile in(tls);
  EXPECT_EQ(in.readline(), "STILL SERVED\n");
  EXPECT_TRUE(test::eventually([&] { return server->stats.snapshot().tls_failures >= 52; }));
  // The dropped ones were closed by the server.
  char byte;
  silent.front().settimeout(10s);
  std::error_code ec;
  EXPECT_EQ(silent.front().recv_into({&byte, 1}, ec), 0u);
}

TEST_F(AsyncTlsTest, HandshakeDeadlineIsTotalNotPerRead) {
  auto server = upper_server();
  server->ssl_handshake_timeout = 1s;  // connection_timeout stays 60 s: only the total can cut
  Serving serving(*server);
  Socket drip = test::connect_to(server->server_address);
  drip.settimeout(10s);
  // A ClientHello's first bytes, one every 200 ms, for at most 20 s.
  const std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  bool cut = false;
  for (int i = 0; i < 100 && !cut; ++i) {
    std::error_code ec;
    drip.send(std::string_view(&hello[static_cast<std::size_t>(i) % hello.size()], 1), ec);
    if (ec) cut = true;
    if (!cut && test::wait_readable(drip.fileno(), 200ms)) cut = true;
  }
  EXPECT_TRUE(cut) << "the drip was never cut";
  EXPECT_TRUE(test::eventually([&] { return server->stats.snapshot().tls_failures == 1; }));
  EXPECT_EQ(server->stats.snapshot().timed_out, 1u);
}

TEST_F(AsyncTlsTest, ProxyHeaderBeforeTheClientHello) {
  auto server = std::make_unique<aio::AsyncTCPServer>(
      test::loopback4(),
      [](aio::Connection conn) -> aio::Task<void> {
        const std::string line = co_await conn.readline();
        co_await conn.sendall(conn.peer_address().to_string() + " " + conn.ssl_object()->version() +
                              (conn.socket().get_nodelay() ? " nodelay" : " nagle") + "\n");
      },
      false);
  server->threads = 1;
  server->proxy_protocol = true;
  server->set_ssl_context(server_context(certs_.server_cert, certs_.server_key));
  server->bind_and_activate();
  Serving serving(*server);
  Socket sock = test::connect_to(server->server_address);
  sock.sendall("PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n");  // then at once the ClientHello
  const auto ctx = create_default_context(Purpose::SERVER_AUTH, certs_.ca_cert);
  sock.settimeout(10s);
  auto tls = ctx.wrap_socket(std::move(sock), false, "localhost");
  tls.sendall("who\n");
  SocketFile in(tls);
  const auto reply = in.readline();
  EXPECT_EQ(reply.substr(0, 20), "192.0.2.7:4711 TLSv1");
  EXPECT_TRUE(reply.ends_with(" nodelay\n")) << reply << " (TLS connections have Nagle off)";
}

TEST_F(AsyncTlsTest, ReloadServesTheNewCertificateToNewConnections) {
  auto server = upper_server();
  Serving serving(*server);
  auto before = connect_tls(server->server_address);
  const auto renewed_cert = dir_.path("renewed.pem");
  const auto renewed_key = dir_.path("renewed.key");
  test::issue_server_cert(certs_, "renewed", renewed_cert, renewed_key);
  server->set_ssl_context(server_context(renewed_cert, renewed_key));
  auto after = connect_tls(server->server_address);
  EXPECT_NE(before.getpeercert()->subject, after.getpeercert()->subject);
  EXPECT_EQ(after.getpeercert()->subject, "CN=renewed");
  for (auto* tls : {&before, &after}) {  // both still served
    tls->sendall("ok\n");
    SocketFile in(*tls);
    EXPECT_EQ(in.readline(), "OK\n");
  }
}

TEST_F(AsyncTlsTest, AsyncClientOpensATlsConnection) {
  auto server = upper_server();
  Serving serving(*server);
  const auto ctx = create_default_context(Purpose::SERVER_AUTH, certs_.ca_cert);
  aio::EventLoop loop;
  const auto reply = loop.run_until_complete(
      [](Address address, const SSLContext& context) -> aio::Task<std::string> {
        auto conn = co_await aio::open_connection(address, context, "localhost", 10s);
        co_await conn.sendall("from a coroutine\n");
        std::string line = co_await conn.readline();
        const bool clean = co_await conn.aclose(2s);
        co_return line + (clean ? "clean" : "not clean");
      }(server->server_address, ctx));
  EXPECT_EQ(reply, "FROM A COROUTINE\nclean");
  EXPECT_TRUE(test::eventually([&] { return clean_ends_ == 1; }));
}

TEST_F(AsyncTlsTest, AsyncClientRefusesAWrongHostName) {
  auto server = upper_server();
  Serving serving(*server);
  const auto ctx = create_default_context(Purpose::SERVER_AUTH, certs_.ca_cert);
  aio::EventLoop loop;
  EXPECT_THROW(
      loop.run_until_complete([](Address address, const SSLContext& context) -> aio::Task<void> {
        auto conn = co_await aio::open_connection(address, context, "not-this-host.test", 10s);
      }(server->server_address, ctx)),
      SSLCertVerificationError);
}

}  // namespace
}  // namespace sockserv
