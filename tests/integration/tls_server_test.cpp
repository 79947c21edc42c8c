// SPDX-License-Identifier: MIT
// The blocking servers over TLS, in process: a reload under a stream of handshakes from several
// threads fails none of them, a PROXY header before the ClientHello, the handler sees only a
// verified client certificate, and kTLS asked for on a kernel without it falls back (logged)
// and still never raises SIGPIPE.
#include <sockserv/error.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/log.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/socket_file.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include "support/test_support.hpp"
#include "support/tls_certs.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;

// serve_forever() on a thread for the length of a scope (shut down and joined however it ends).
class Serving {
 public:
  explicit Serving(BaseServer& server)
      : server_(server), thread_([&server] { server.serve_forever(0.05s); }) {}
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;
  ~Serving() {
    server_.shutdown();
    thread_.join();
  }

 private:
  BaseServer& server_;
  std::thread thread_;
};

class TlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tls_available() || !test::have_openssl()) GTEST_SKIP() << "no TLS or no openssl command";
    certs_ = test::make_tls_certs(dir_.path());
  }
  void TearDown() override { set_log_sink(nullptr); }

  std::shared_ptr<const SSLContext> server_context(const std::string& cert, const std::string& key,
                                                   bool client_certs = false,
                                                   bool ktls = false) const {
    auto ctx = create_default_context(Purpose::CLIENT_AUTH);
    ctx.load_cert_chain(cert, key);
    if (client_certs) {
      ctx.load_verify_locations(certs_.ca_cert);
      ctx.set_verify_mode(VerifyMode::CERT_REQUIRED);
    }
    if (ktls) ctx.set_ktls(true);
    return std::make_shared<const SSLContext>(std::move(ctx));
  }
  SSLContext client_context() const {
    return create_default_context(Purpose::SERVER_AUTH, certs_.ca_cert);
  }
  // The server's reply to one line, over a new TLS connection.
  std::string ask(const Address& address, const SSLContext& ctx, const std::string& line) const {
    Socket sock = test::connect_to(address);
    sock.settimeout(10s);
    auto tls = ctx.wrap_socket(std::move(sock), false, "localhost");
    tls.sendall(line + "\n");
    SocketFile in(tls);
    auto reply = in.readline();
    tls.shutdown(SHUT_WR);
    return reply;
  }

  // A threading server whose handler answers each line with `reply(handler)`.
  template <class Reply>
  std::unique_ptr<ThreadingTCPServer> server(Reply reply) {
    auto s = std::make_unique<ThreadingTCPServer>(
        test::loopback4(), handler<StreamRequestHandler>([reply](StreamRequestHandler& self) {
          for (const auto& line : self.rfile.lines()) {
            (void)line;
            self.wfile.write(reply(self) + "\n");
          }
        }),
        false);
    s->bind_and_activate();
    return s;
  }

  test::TempDir dir_;
  test::TlsCerts certs_;
};

TEST_F(TlsServerTest, ReloadUnderAStreamOfHandshakesFailsNone) {
  auto s = server([](StreamRequestHandler&) { return std::string("ok"); });
  s->set_ssl_context(server_context(certs_.server_cert, certs_.server_key));
  const auto renewed_cert = dir_.path("renewed.pem");
  const auto renewed_key = dir_.path("renewed.key");
  test::issue_server_cert(certs_, "renewed", renewed_cert, renewed_key);
  const auto contexts = std::vector{server_context(certs_.server_cert, certs_.server_key),
                                    server_context(renewed_cert, renewed_key)};
  const Serving serving(*s);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex subjects_mutex;
  std::set<std::string> subjects;
  std::vector<std::thread> clients;
  const auto ctx = client_context();
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      // Bounded: at most 2,000 handshakes a thread, and until the reloads are over.
      for (int i = 0; i < 2000 && !stop; ++i) {
        try {
          Socket sock = test::connect_to(s->server_address);
          sock.settimeout(10s);
          auto tls = ctx.wrap_socket(std::move(sock), false, "localhost");
          tls.sendall("x\n");
          SocketFile in(tls);
          if (in.readline() != "ok\n") throw std::runtime_error("bad reply");
          const std::lock_guard lock(subjects_mutex);
          subjects.insert(tls.getpeercert()->subject);
          ++ok;
        } catch (const std::exception& e) {
          ++failed;
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (int swap = 0; swap < 40; ++swap) {  // a reload every 25 ms for a second
    std::this_thread::sleep_for(25ms);
    s->set_ssl_context(contexts[static_cast<std::size_t>(swap) % 2]);
  }
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(subjects.size(), 2u) << "both certificates were served";
  EXPECT_EQ(s->stats.snapshot().tls_failures, 0u);
  RecordProperty("handshakes", ok.load());
}

TEST_F(TlsServerTest, ProxyHeaderBeforeTheClientHello) {
  auto s = server([](StreamRequestHandler& self) { return self.client_address.to_string(); });
  s->proxy_protocol = true;
  s->set_ssl_context(server_context(certs_.server_cert, certs_.server_key));
  const Serving serving(*s);
  Socket sock = test::connect_to(s->server_address);
  sock.sendall("PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n");
  sock.settimeout(10s);
  auto tls = client_context().wrap_socket(std::move(sock), false, "localhost");
  tls.sendall("who\n");
  SocketFile in(tls);
  EXPECT_EQ(in.readline(), "192.0.2.7:4711\n");
}

// TLS 1.3's session tickets follow the handshake at once; with Nagle on, the first reply would
// wait for their delayed ACK (40 ms). TLS connections have TCP_NODELAY, as in nginx.
TEST_F(TlsServerTest, TlsConnectionsHaveNagleOff) {
  auto s = server([](StreamRequestHandler& self) {
    return std::string(self.connection().get_nodelay() ? "nodelay" : "nagle");
  });
  s->set_ssl_context(server_context(certs_.server_cert, certs_.server_key));
  const Serving serving(*s);
  EXPECT_EQ(ask(s->server_address, client_context(), "?"), "nodelay\n");
}

TEST_F(TlsServerTest, TheHandlerSeesOnlyAVerifiedClientCertificate) {
  auto s = server([](StreamRequestHandler& self) {
    const auto peer = ssl_object(self.connection())->getpeercert();
    return peer ? peer->subject : std::string("-");
  });
  s->set_ssl_context(server_context(certs_.server_cert, certs_.server_key, true));
  const Serving serving(*s);
  auto ctx = client_context();
  ctx.load_cert_chain(certs_.client_cert, certs_.client_key);
  EXPECT_TRUE(ask(s->server_address, ctx, "who").starts_with("CN=" + std::string(test::kClientCN)));
  auto untrusted = client_context();
  untrusted.load_cert_chain(certs_.untrusted_cert, certs_.untrusted_key);
  // The server refuses it: TLS 1.3 reports the alert at the client's first read.
  EXPECT_THROW(ask(s->server_address, untrusted, "who"), SSLError);
  EXPECT_TRUE(test::eventually([&] { return s->stats.snapshot().tls_failures == 1; }));
}

TEST_F(TlsServerTest, KtlsWhereTheKernelHasNoneFallsBackLoggedAndRaisesNoSigpipe) {
  std::mutex mutex;
  std::string logged;
  set_log_sink([&](LogLevel, std::string_view message) {
    const std::lock_guard lock(mutex);
    logged += std::string(message) + "\n";
  });
  const auto server_ctx = server_context(certs_.server_cert, certs_.server_key, false, true);
  auto listener = create_server(test::loopback4());
  Socket client = test::connect_to(listener.getsockname());
  Socket accepted = listener.accept().first;
  accepted.settimeout(10s);
  client.settimeout(10s);
  std::thread server_side([&] { accepted = server_ctx->wrap_socket(std::move(accepted), true); });
  auto tls = client_context().wrap_socket(std::move(client), false, "localhost");
  server_side.join();
  const auto* server_tls = ssl_object(accepted);
  ASSERT_NE(server_tls, nullptr);
  if (!server_tls->ktls_send()) {
    const std::lock_guard lock(mutex);
    EXPECT_NE(logged.find("kernel TLS was asked for but is not in effect"), std::string::npos)
        << logged;
  }
  tls.sendall("through the fallback\n");
  SocketFile in(accepted);
  EXPECT_EQ(in.readline(), "through the fallback\n");
  // The peer is gone: OpenSSL's own socket BIO writes with write(2), which would raise SIGPIPE
  // and kill this test; sockserv blocks it for the call and reports the error instead.
  tls.close();
  std::string big(1 << 20, 'x');
  EXPECT_THROW(
      {
        for (int i = 0; i < 64; ++i) accepted.sendall(big);
      },
      SocketError);
}

}  // namespace
}  // namespace sockserv
