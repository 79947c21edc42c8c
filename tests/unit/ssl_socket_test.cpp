// SPDX-License-Identifier: MIT
// SSLContext and SSLSocket in-process over a real loopback TCP connection: the client in the
// test's thread, the server side of accept() in a std::async thread. Certificates are made with
// the openssl command at test time (support/tls_certs.hpp). Every socket has a timeout, so a side
// that waits for the other in vain ends with an exception instead of hanging the test.
#include <sockserv/tls/ssl_socket.hpp>

#include <sockserv/error.hpp>
#include <sockserv/server.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>
#include <sockserv/tls/ssl_context.hpp>

#include "support/test_support.hpp"
#include "support/tls_certs.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <future>
#include <stdexcept>
#include <string>
#include <utility>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::contains;

class SslSocketTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_openssl()) GTEST_SKIP() << "the openssl command is not installed";
    certs_ = test::make_tls_certs(dir_.path());
    listener_ = create_server(test::loopback4());
    listener_.settimeout(10s);
    baseline_fds_ = test::count_open_fds();
  }

  SSLContext server_context() const {
    auto ctx = create_default_context(Purpose::CLIENT_AUTH);
    ctx.load_cert_chain(certs_.server_cert, certs_.server_key);
    return ctx;
  }
  SSLContext client_context() const {
    return create_default_context(Purpose::SERVER_AUTH, certs_.ca_cert);
  }

  // Runs `f(accepted)` in a thread; the accepted socket has a 10 s timeout.
  template <class F>
  auto serve(F f) {
    return std::async(std::launch::async, [this, f = std::move(f)]() mutable {
      auto accepted = listener_.accept().first;
      accepted.settimeout(10s);
      return f(std::move(accepted));
    });
  }
  Socket connect() { return test::connect_to(listener_.getsockname(), 10s); }

  // A client handshake with `ctx` against a server that wraps with `server_ctx` and then runs
  // `after(server_side)`.
  template <class F>
  std::pair<SSLSocket, std::future<std::invoke_result_t<F, SSLSocket&>>> handshake(
      const SSLContext& ctx, const SSLContext& server_ctx, F after,
      const std::string& hostname = "localhost", const SSLSession* session = nullptr) {
    auto server = serve([&server_ctx, after = std::move(after)](Socket sock) mutable {
      auto tls = server_ctx.wrap_socket(std::move(sock), true);
      return after(tls);
    });
    auto client = ctx.wrap_socket(connect(), false, hostname, true, session);
    return {std::move(client), std::move(server)};
  }

  test::TempDir dir_;
  test::TlsCerts certs_;
  Socket listener_;
  std::size_t baseline_fds_ = 0;
};

TEST_F(SslSocketTest, ByteCallsAndSocketFileCarryDataBothWays) {
  const auto server_ctx = server_context();
  auto [client, server] = handshake(client_context(), server_ctx, [](SSLSocket& tls) {
    // Upper-cases each line until the client's close_notify, through a SocketFile.
    SocketFile file(tls);
    std::string seen;
    for (const auto& line : file.lines(200000)) {
      seen += line;
      std::string reply = line;
      std::transform(reply.begin(), reply.end(), reply.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      tls.sendall(reply);
    }
    tls.shutdown(SHUT_WR);
    return seen;
  });
  EXPECT_EQ(client.version(), "TLSv1.3");
  ASSERT_TRUE(client.cipher().has_value());
  EXPECT_FALSE(client.cipher()->name.empty());
  client.sendall("hello tls\n");
  EXPECT_EQ(client.recv_exact(10), "HELLO TLS\n");
  // A message bigger than one TLS record (16 KiB) and than the socket's buffers' first fill.
  std::string big(100000, 'x');
  big += "\n";
  client.sendall("two\nlines\n" + big);
  SocketFile file(client);
  EXPECT_EQ(file.readline(), "TWO\n");
  EXPECT_EQ(file.readline(), "LINES\n");
  EXPECT_EQ(file.readline(200000), std::string(100000, 'X') + "\n");
  client.shutdown(SHUT_WR);  // close_notify
  EXPECT_EQ(client.recv(100), "");
  EXPECT_EQ(server.get(), "hello tls\ntwo\nlines\n" + big);
}

TEST_F(SslSocketTest, RecvReturnsEmptyAfterThePeersShutdownSentCloseNotify) {
  const auto server_ctx = server_context();
  auto [client, server] = handshake(client_context(), server_ctx, [](SSLSocket& tls) {
    tls.sendall("bye\n");
    tls.shutdown(SHUT_WR);
    return tls.recv(100);  // the client's own close_notify
  });
  EXPECT_EQ(client.recv_exact(4), "bye\n");
  EXPECT_EQ(client.recv(100), "");
  EXPECT_TRUE(client.ssl().close_notify_received());
  EXPECT_EQ(client.recv(100), "") << "EOF stays EOF";
  client.shutdown(SHUT_WR);
  EXPECT_EQ(server.get(), "");
}

TEST_F(SslSocketTest, RecvReturnsEmptyAfterThePeersGracefulClose) {
  const auto server_ctx = server_context();
  auto [client, server] = handshake(client_context(), server_ctx, [](SSLSocket& tls) {
    tls.sendall("done\n");
    return tls.graceful_close(5s);
  });
  EXPECT_EQ(client.recv_exact(5), "done\n");
  EXPECT_EQ(client.recv(100), "");
  EXPECT_TRUE(client.ssl().close_notify_received());
  client.shutdown(SHUT_WR);
  EXPECT_TRUE(server.get()) << "the server saw our close_notify and FIN";
}

TEST_F(SslSocketTest, PeerClosingTcpWithoutCloseNotifyRaisesSSLEOFError) {
  const auto server_ctx = server_context();
  auto [client, server] = handshake(client_context(), server_ctx, [](SSLSocket& tls) {
    tls.sendall("partial");
    tls.close();  // FIN without close_notify: what a truncation attack looks like
    return 0;
  });
  EXPECT_EQ(client.recv_exact(7), "partial");
  EXPECT_TRUE(test::throws_code<SSLEOFError>([&] { client.recv(100); }, ssl_errc::unexpected_eof));
  server.get();
}

TEST_F(SslSocketTest, UntrustedCaFailsVerificationAndLeavesNoDescriptors) {
  const auto server_ctx = server_context();
  {
    auto server = serve([&](Socket sock) {
      EXPECT_THROW(server_ctx.wrap_socket(std::move(sock), true), SSLError);
      return 0;
    });
    // A client that trusts another CA (the self-signed certificate) only.
    const auto ctx = create_default_context(Purpose::SERVER_AUTH, certs_.untrusted_cert);
    EXPECT_TRUE(test::throws_code<SSLCertVerificationError>(
        [&] { ctx.wrap_socket(connect(), false, "localhost"); }, ssl_errc::cert_verification));
    server.get();
  }
  EXPECT_EQ(test::count_open_fds(), baseline_fds_);
}

TEST_F(SslSocketTest, CheckHostnameRefusesAServerCertificateForAnotherName) {
  const auto server_ctx = server_context();
  const auto ctx = client_context();
  for (const std::string name : {"wrong.example", "127.0.0.2", "other.test"}) {
    auto server = serve([&](Socket sock) {
      EXPECT_THROW(server_ctx.wrap_socket(std::move(sock), true), SSLError) << name;
      return 0;
    });
    try {
      ctx.wrap_socket(connect(), false, name);
      ADD_FAILURE() << name << ": the handshake succeeded";
    } catch (const SSLCertVerificationError& e) {
      EXPECT_EQ(e.code(), ssl_errc::cert_verification) << e.what();
    }
    server.get();
  }
  // The certificate's names do pass: DNS:localhost and IP Address:127.0.0.1.
  for (const std::string name : {"localhost", "127.0.0.1"}) {
    auto [client, server] = handshake(ctx, server_ctx, [](SSLSocket& tls) { return tls.recv(1); });
    client.shutdown(SHUT_WR);
    EXPECT_EQ(server.get(), "") << name;
  }
  EXPECT_EQ(test::count_open_fds(), baseline_fds_);
}

TEST_F(SslSocketTest, SettimeoutBoundsARecvOverTlsAndTheConnectionGoesOn) {
  const auto server_ctx = server_context();
  auto [client, server] = handshake(client_context(), server_ctx, [](SSLSocket& tls) {
    SocketFile file(tls);
    const auto line = file.readline();  // sent only after the client's recv timed out
    tls.sendall("got " + line);
    return line;
  });
  client.settimeout(200ms);
  EXPECT_TRUE(test::throws_code<TimeoutError>([&] { client.recv(100); }, std::errc::timed_out));
  client.settimeout(10s);
  client.sendall("after\n");
  EXPECT_EQ(client.recv_exact(10), "got after\n");
  EXPECT_EQ(server.get(), "after\n");
}

TEST_F(SslSocketTest, AlpnPicksTheServersFirstProtocolTheClientOffers) {
  auto server_ctx = server_context();
  server_ctx.set_alpn_protocols({"h2", "http/1.1"});
  auto ctx = client_context();
  ctx.set_alpn_protocols({"spdy/3", "http/1.1"});
  auto [client, server] = handshake(ctx, server_ctx, [](SSLSocket& tls) {
    const auto chosen = tls.selected_alpn_protocol();
    tls.recv(1);
    return chosen;
  });
  EXPECT_EQ(client.selected_alpn_protocol(), "http/1.1");
  client.shutdown(SHUT_WR);
  EXPECT_EQ(server.get(), "http/1.1");

  // No protocol in common: the handshake goes on without ALPN.
  auto other = client_context();
  other.set_alpn_protocols({"smtp"});
  auto [client2, server2] = handshake(other, server_ctx, [](SSLSocket& tls) {
    const auto chosen = tls.selected_alpn_protocol();
    tls.recv(1);
    return chosen;
  });
  EXPECT_EQ(client2.selected_alpn_protocol(), "");
  client2.shutdown(SHUT_WR);
  EXPECT_EQ(server2.get(), "");
}

TEST_F(SslSocketTest, MutualTlsShowsBothPeerCertificates) {
  auto server_ctx = server_context();
  server_ctx.load_verify_locations(certs_.ca_cert);
  server_ctx.set_verify_mode(VerifyMode::CERT_REQUIRED);
  auto ctx = client_context();
  ctx.load_cert_chain(certs_.client_cert, certs_.client_key);
  auto [client, server] = handshake(ctx, server_ctx, [](SSLSocket& tls) {
    auto peer = tls.getpeercert();
    const auto version = tls.version();
    tls.recv(1);
    return std::make_pair(peer, version);
  });
  const auto before = std::chrono::system_clock::now();
  const auto server_cert = client.getpeercert();
  client.shutdown(SHUT_WR);
  const auto [client_cert, server_version] = server.get();

  EXPECT_EQ(server_version, "TLSv1.3");
  ASSERT_TRUE(client_cert.has_value()) << "the server verified the client certificate";
  EXPECT_TRUE(contains(client_cert->subject, std::string("CN=") + test::kClientCN))
      << client_cert->subject;
  EXPECT_TRUE(contains(client_cert->subject, "O=sockserv tests")) << client_cert->subject;
  EXPECT_TRUE(contains(client_cert->issuer, "CN=sockserv test CA")) << client_cert->issuer;

  ASSERT_TRUE(server_cert.has_value());
  EXPECT_EQ(server_cert->subject, "CN=localhost");
  EXPECT_TRUE(contains(server_cert->issuer, "CN=sockserv test CA")) << server_cert->issuer;
  const auto& sans = server_cert->subject_alt_names;
  EXPECT_NE(std::find(sans.begin(), sans.end(), "DNS:localhost"), sans.end());
  EXPECT_NE(std::find(sans.begin(), sans.end(), "IP Address:127.0.0.1"), sans.end());
  EXPECT_LT(server_cert->not_before, before);
  EXPECT_GT(server_cert->not_after, before);
  EXPECT_FALSE(server_cert->serial_number.empty());
  const auto cipher = client.cipher();
  ASSERT_TRUE(cipher.has_value());
  EXPECT_EQ(cipher->protocol, "TLSv1.3");
  EXPECT_GE(cipher->secret_bits, 128);
}

class SslResumptionTest : public SslSocketTest, public testing::WithParamInterface<TLSVersion> {};

TEST_P(SslResumptionTest, SessionOfOneConnectionResumesTheNext) {
  const auto server_ctx = server_context();
  auto ctx = client_context();
  ctx.set_maximum_version(GetParam());
  auto greet = [](SSLSocket& tls) {
    tls.sendall("hi\n");
    tls.recv(1);  // the client's close_notify
    return tls.session_reused();
  };
  SSLSession session;
  {
    auto [client, server] = handshake(ctx, server_ctx, greet);
    // TLS 1.3 sends its tickets after the handshake: they arrive with the first read.
    EXPECT_EQ(client.recv_exact(3), "hi\n");
    EXPECT_FALSE(client.session_reused());
    session = client.session();
    client.shutdown(SHUT_WR);
    EXPECT_FALSE(server.get());
  }
  ASSERT_TRUE(session);
  auto [client, server] = handshake(ctx, server_ctx, greet, "localhost", &session);
  EXPECT_EQ(client.recv_exact(3), "hi\n");
  EXPECT_TRUE(client.session_reused());
  EXPECT_EQ(client.version(), GetParam() == TLSVersion::TLSv1_2 ? "TLSv1.2" : "TLSv1.3");
  client.shutdown(SHUT_WR);
  EXPECT_TRUE(server.get()) << "the server resumed too";
}

// Regression: session() hands out a copy, so a session saved before a close without
// close_notify (which makes OpenSSL mark the connection's own session unresumable) resumes.
TEST_P(SslResumptionTest, SessionSavedBeforeAPlainCloseStillResumes) {
  const auto server_ctx = server_context();
  auto ctx = client_context();
  ctx.set_maximum_version(GetParam());
  auto greet = [](SSLSocket& tls) {
    tls.sendall("hi\n");
    EXPECT_THROW(tls.recv(1), SSLEOFError);  // the client just closes
    return tls.session_reused();
  };
  SSLSession session;
  {
    auto [client, server] = handshake(ctx, server_ctx, greet);
    EXPECT_EQ(client.recv_exact(3), "hi\n");
    session = client.session();
    client.close();  // no close_notify, as many clients end
    server.get();
  }
  auto [client, server] = handshake(ctx, server_ctx, greet, "localhost", &session);
  EXPECT_EQ(client.recv_exact(3), "hi\n");
  EXPECT_TRUE(client.session_reused()) << "the saved session was spoiled by the first close()";
  client.close();
  server.get();
}

std::string version_name(const testing::TestParamInfo<TLSVersion>& v) {
  return v.param == TLSVersion::TLSv1_2 ? "TLSv1_2" : "TLSv1_3";
}

INSTANTIATE_TEST_SUITE_P(Versions, SslResumptionTest,
                         testing::Values(TLSVersion::TLSv1_2, TLSVersion::TLSv1_3), version_name);

TEST_F(SslSocketTest, TicketKeyFileOfTheWrongSizeIsRefused) {
  auto ctx = server_context();
  for (const std::size_t size : {0, 79, 81, 200}) {
    const auto path = dir_.path("keys" + std::to_string(size));
    std::ofstream(path, std::ios::binary) << std::string(size, 'k');
    EXPECT_THROW(ctx.load_session_ticket_keys(path), SSLError) << size << " bytes";
  }
  EXPECT_THROW(ctx.load_session_ticket_keys(dir_.path("missing")), SocketError);
  const auto good = dir_.path("good");
  test::write_ticket_keys(good, 2);
  EXPECT_NO_THROW(ctx.load_session_ticket_keys(good));
}

TEST_F(SslSocketTest, ContextIsFrozenOnceAConnectionUsedIt) {
  const auto server_ctx = server_context();
  auto ctx = client_context();
  auto copy = ctx;                // a copy shares the settings, and so the freeze
  ctx.set_alpn_protocols({"x"});  // still configurable
  {
    auto [client, server] = handshake(ctx, server_ctx, [](SSLSocket& tls) { return tls.recv(1); });
    client.shutdown(SHUT_WR);
    server.get();
  }
  EXPECT_THROW(ctx.set_alpn_protocols({"y"}), std::logic_error);
  EXPECT_THROW(ctx.load_cert_chain(certs_.client_cert, certs_.client_key), std::logic_error);
  EXPECT_THROW(copy.set_minimum_version(TLSVersion::TLSv1_3), std::logic_error);
  auto used_server = server_ctx;
  EXPECT_THROW(used_server.set_verify_mode(VerifyMode::CERT_OPTIONAL), std::logic_error);
  EXPECT_THROW(used_server.set_num_tickets(0), std::logic_error);
}

// Regression: unwrap() waits for the peer's close_notify, so no TLS record is left to be
// read as clear text afterwards.
TEST_F(SslSocketTest, UnwrapLeavesAPlainSocketThatStillWorks) {
  const auto server_ctx = server_context();
  auto [client, server] = handshake(client_context(), server_ctx, [](SSLSocket& tls) {
    tls.sendall("secret\n");
    Socket plain = tls.unwrap();
    EXPECT_EQ(ssl_object(plain), nullptr);
    plain.sendall("clear\n");
    return plain.recv_exact(6);
  });
  EXPECT_EQ(client.recv_exact(7), "secret\n");
  Socket plain = client.unwrap();
  EXPECT_EQ(ssl_object(plain), nullptr);
  EXPECT_EQ(plain.recv_exact(6), "clear\n");
  plain.sendall("plain\n");
  EXPECT_EQ(server.get(), "plain\n");
}

// Regression: flags other than MSG_DONTWAIT/MSG_NOSIGNAL are refused over TLS (Python raises
// ValueError) instead of being dropped, which made MSG_PEEK consume the bytes.
TEST_F(SslSocketTest, RecvWithMsgPeekRefusesOrLeavesTheBytes) {
  const auto server_ctx = server_context();
  auto [client, server] = handshake(client_context(), server_ctx, [](SSLSocket& tls) {
    tls.sendall("peek me\n");
    return tls.recv(1);  // our close_notify
  });
  std::string peeked;
  try {
    peeked = client.recv(100, MSG_PEEK);
  } catch (const std::exception& refused) {
    SUCCEED() << "refused: " << refused.what();
  }
  if (!peeked.empty()) {
    client.settimeout(500ms);
    std::string again;
    try {
      again = client.recv_exact(peeked.size());
    } catch (const TimeoutError&) {
      again = "(nothing: the peek consumed the bytes)";
    }
    EXPECT_EQ(again, peeked);
  }
  client.shutdown(SHUT_WR);
  EXPECT_EQ(server.get(), "");
}

TEST_F(SslSocketTest, SniContextServesTheOtherCertificate) {
  auto server_ctx = server_context();
  auto other = create_default_context(Purpose::CLIENT_AUTH);
  other.load_cert_chain(certs_.other_cert, certs_.other_key);
  server_ctx.add_sni_context(test::kOtherCN, std::move(other));
  auto asked = [](SSLSocket& tls) {
    const auto name = tls.server_hostname();
    tls.recv(1);
    return name;
  };
  const auto ctx = client_context();
  {
    auto [client, server] = handshake(ctx, server_ctx, asked, test::kOtherCN);
    ASSERT_TRUE(client.getpeercert().has_value());
    EXPECT_EQ(client.getpeercert()->subject, std::string("CN=") + test::kOtherCN);
    client.shutdown(SHUT_WR);
    EXPECT_EQ(server.get(), test::kOtherCN);
  }
  {
    auto [client, server] = handshake(ctx, server_ctx, asked, "localhost");
    EXPECT_EQ(client.getpeercert()->subject, "CN=localhost");
    client.shutdown(SHUT_WR);
    EXPECT_EQ(server.get(), "localhost");
  }
  EXPECT_EQ(test::count_open_fds(), baseline_fds_);
}

// An sni_callback that throws refuses that handshake with an alert (logged), and the server's
// socket is left as it was: the next client is served.
TEST_F(SslSocketTest, SniCallbackThatThrowsRefusesOnlyThatHandshake) {
  auto server_ctx = server_context();
  server_ctx.set_sni_callback([](std::string_view name) -> std::shared_ptr<const SSLContext> {
    if (name == "refused.test") throw std::runtime_error("no certificate for this name");
    return nullptr;
  });
  const auto ctx = client_context();
  auto refused = serve([&server_ctx](Socket sock) {
    EXPECT_THROW(server_ctx.wrap_socket(std::move(sock), true), SSLError);
    return 0;
  });
  EXPECT_THROW(ctx.wrap_socket(connect(), false, "refused.test"), SSLError);
  refused.get();
  auto [client, server] =
      handshake(ctx, server_ctx, [](SSLSocket& tls) { return tls.server_hostname(); });
  EXPECT_EQ(server.get(), "localhost");
}

TEST_F(SslSocketTest, AServerRefusesAClientContext) {
  TCPServer server(test::loopback4(), [](Request&, const Address&, BaseServer&) {});
  EXPECT_THROW(server.set_ssl_context(std::make_shared<const SSLContext>(client_context())),
               std::invalid_argument);
  EXPECT_NO_THROW(server.set_ssl_context(std::make_shared<const SSLContext>(server_context())));
  EXPECT_NO_THROW(server.set_ssl_context(nullptr));  // back to plain
  EXPECT_EQ(server.ssl_context(), nullptr);
}

TEST_F(SslSocketTest, ADatagramServerRefusesTls) {
  UDPServer server(test::loopback4(), [](Request&, const Address&, BaseServer&) {});
  EXPECT_THROW(server.set_ssl_context(std::make_shared<const SSLContext>(server_context())),
               std::invalid_argument);
}

}  // namespace
}  // namespace sockserv
