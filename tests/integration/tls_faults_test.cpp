// SPDX-License-Identifier: MIT
// TLS faults against `sockserv serve` as a real process (threading, and where cheap pool and
// forking): silent clients cut at --tls-handshake-timeout while a normal client is served, a
// ClientHello dripped a byte at a time cut at the handshake's total deadline, plain text and
// random bytes instead of a ClientHello, a peer that vanishes mid-handshake, a client that cuts
// the stream without close_notify, a client that never answers close_notify, 200 silent
// connections, and SIGHUP reloading the certificate under a stream of handshakes (and keeping
// the old one when the new files are bad). After the faults the server's descriptors
// (/proc/PID/fd) are back to their baseline; the in-process test checks /proc/self/fd, threads
// and the TLS counters. No test asserts a duration: every wait has a bound, and a bound that
// passes fails the test.
#include <sockserv/error.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/log.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include "support/test_support.hpp"
#include "support/tls_certs.hpp"
#include "support/tls_serving.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::contains;
using test::ended_by_server;

// A real client's first flight (its ClientHello), captured on a loopback connection of ours.
std::string client_hello(const SSLContext& ctx) {
  auto listener = create_server(test::loopback4());
  auto conn = test::connect_to(listener.getsockname(), 5s);
  auto peer = listener.accept().first;
  peer.settimeout(5s);
  conn.settimeout(100ms);
  auto tls = ctx.wrap_socket(std::move(conn), false, "localhost", false);
  EXPECT_THROW(tls.do_handshake(), TimeoutError);  // nobody answers
  return peer.recv(65536);
}

// The descriptor count of `pid` once it stops changing (a request's thread may still be ending).
std::size_t settled_fds(pid_t pid) {
  auto last = test::count_fds_of(pid);
  for (int i = 0; i < 250; ++i) {
    std::this_thread::sleep_for(20ms);
    const auto now = test::count_fds_of(pid);
    if (now == last) return now;
    last = now;
  }
  return last;
}

class TlsFaultsTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_openssl()) GTEST_SKIP() << "the openssl command is not installed";
    if (!test::have_program(test::python3())) GTEST_SKIP() << "python3 is not installed";
    certs_ = test::make_tls_certs(dir_.path());
  }

  // `sockserv serve --mode MODE --handler HANDLER` with the server certificate and `extra`.
  // The descriptor baseline is taken after one served connection.
  void start(const std::string& mode, const std::string& handler,
             std::vector<std::string> extra = {}, const std::string& cert = {},
             const std::string& key = {}) {
    std::vector<std::string> args{"--mode",     mode,
                                  "--handler",  handler,
                                  "--tls-cert", cert.empty() ? certs_.server_cert : cert,
                                  "--tls-key",  key.empty() ? certs_.server_key : key};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<test::ServeProcess>(SOCKSERV_EXE, args);
    if (!server_->started()) throw std::runtime_error("sockserv serve did not start");
    // One served connection first: OpenSSL opens what it keeps (its random device, under the
    // sanitizers) with the first handshake, and that is not a leak.
    if (handler == "upper") {
      EXPECT_TRUE(served()) << "warm-up";
    } else {
      auto tls = client_context().wrap_socket(connect(), false, "localhost");
      SocketFile(tls).readline();
      tls.graceful_close(2s);
    }
    baseline_ = settled_fds(server_->pid());
  }
  // A normal Python client is served.
  bool served(const std::string& cn = "localhost") {
    const auto lines = test::python_client(server_->port(), {"ca=" + certs_.ca_cert});
    const bool ok =
        lines.size() == 1 && lines[0].starts_with("OK HELLO |") && lines[0].ends_with(" cn=" + cn);
    if (!ok) {
      ADD_FAILURE() << (lines.empty() ? "(no output)" : lines[0]);
    }
    return ok;
  }
  Socket connect() { return test::connect_to(server_->address(), 10s); }
  SSLContext client_context() const {
    return create_default_context(Purpose::SERVER_AUTH, certs_.ca_cert);
  }
  void expect_fds_at_baseline() {
    EXPECT_TRUE(test::eventually([&] { return test::count_fds_of(server_->pid()) == baseline_; }))
        << test::count_fds_of(server_->pid()) << " descriptors, baseline " << baseline_;
  }

  test::TempDir dir_;
  test::TlsCerts certs_;
  std::unique_ptr<test::ServeProcess> server_;
  std::size_t baseline_ = 0;
};

class TlsFaultsModeTest : public TlsFaultsTest, public testing::WithParamInterface<std::string> {};

TEST_P(TlsFaultsModeTest, SilentClientsAreCutAtTheHandshakeTimeoutWhileAnotherIsServed) {
  // --first-bytes-timeout 0: forking mode would otherwise never fork for a client that sends
  // nothing (the kernel holds it back, then the parent closes it: access_serve_test), and this
  // test is about the handshake deadline.
  start(GetParam(), "upper", {"--tls-handshake-timeout", "1", "--first-bytes-timeout", "0"});
  std::vector<Socket> silent;
  for (int i = 0; i < 5; ++i) silent.push_back(connect());
  EXPECT_TRUE(served()) << "served while 5 handshakes wait";
  for (auto& sock : silent) EXPECT_TRUE(ended_by_server(sock));
  EXPECT_TRUE(server_->wait_for_log("TLS handshake with", 5)) << server_->log();
  EXPECT_TRUE(contains(server_->log(), "timed out")) << server_->log();
  silent.clear();
  expect_fds_at_baseline();
}

std::string mode_name(const testing::TestParamInfo<std::string>& mode) { return mode.param; }

INSTANTIATE_TEST_SUITE_P(Modes, TlsFaultsModeTest,
                         testing::Values("threading", "pool", "forking", "async"), mode_name);

TEST_F(TlsFaultsTest, DrippedClientHelloIsCutAtTheTotalDeadlineNotPerRead) {
  // Each byte comes well within any per-read timeout (the default --timeout is 60 s); only the
  // handshake's total deadline of 1 s can end this.
  start("threading", "upper", {"--tls-handshake-timeout", "1"});
  const auto hello = client_hello(client_context());
  ASSERT_GT(hello.size(), 40u);
  auto sock = connect();
  std::size_t sent = 0;
  bool cut = false;
  while (!cut && sent < 40) {  // 40 bytes take 12 s: far past the deadline
    std::error_code ec;
    sock.send(hello.substr(sent, 1), ec);
    if (ec) break;
    ++sent;
    cut = test::wait_readable(sock.fileno(), 300ms);  // the pace; readable: the server ended it
  }
  EXPECT_TRUE(cut || sent < 40) << "the server read " << sent << " bytes and waited for more";
  EXPECT_TRUE(ended_by_server(sock));
  EXPECT_TRUE(server_->wait_for_log("TLS handshake with")) << server_->log();
  EXPECT_TRUE(contains(server_->log(), "timed out")) << server_->log();
  EXPECT_TRUE(served());
  expect_fds_at_baseline();
}

TEST_F(TlsFaultsTest, PlainTextAndRandomBytesEndOnlyThatConnection) {
  start("threading", "upper", {"--tls-handshake-timeout", "5"});
  std::mt19937 random(42);
  std::string noise(600, '\0');
  for (auto& c : noise) c = static_cast<char>(random() & 0xff);
  noise[0] = 'R';          // not a handshake record's type byte
  auto other = connect();  // a connection opened before the faults, used after them
  for (const std::string& junk :
       {std::string("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), noise}) {
    auto sock = connect();
    sock.sendall(junk);
    EXPECT_TRUE(ended_by_server(sock));
  }
  EXPECT_TRUE(server_->wait_for_log(" failed: ", 2)) << server_->log();
  EXPECT_EQ(server_->count_in_log("TLS handshake with 127.0.0.1:"), 2u) << server_->log();
  EXPECT_TRUE(served());
  auto tls = client_context().wrap_socket(std::move(other), false, "localhost");
  tls.sendall("still here\n");
  EXPECT_EQ(tls.recv_exact(11), "STILL HERE\n");
  tls.shutdown(SHUT_WR);
  EXPECT_EQ(tls.recv(100), "");
  expect_fds_at_baseline();
}

TEST_F(TlsFaultsTest, PeerVanishingMidHandshakeEndsOnlyThatConnection) {
  start("threading", "upper");
  const auto hello = client_hello(client_context());
  {
    auto sock = connect();  // half a ClientHello, then a reset
    sock.sendall(hello.substr(0, hello.size() / 2));
    sock.set_linger(0s);
  }
  {
    auto sock = connect();  // the whole ClientHello, part of the server's answer, then a reset
    sock.sendall(hello);
    EXPECT_FALSE(sock.recv(100).empty());
    sock.set_linger(0s);
  }
  EXPECT_TRUE(server_->wait_for_log("TLS handshake with", 2)) << server_->log();
  EXPECT_TRUE(served());
  expect_fds_at_baseline();
}

TEST_F(TlsFaultsTest, StreamCutWithoutCloseNotifyIsLoggedAsTruncation) {
  start("threading", "upper");
  auto tls = client_context().wrap_socket(connect(), false, "localhost");
  tls.sendall("hello\n");
  EXPECT_EQ(tls.recv_exact(6), "HELLO\n");
  tls.close();  // FIN without close_notify
  EXPECT_TRUE(server_->wait_for_log("ended without TLS close_notify")) << server_->log();
  EXPECT_TRUE(contains(server_->log(), "truncated")) << server_->log();
  EXPECT_TRUE(served());
  expect_fds_at_baseline();
}

TEST_F(TlsFaultsTest, ClientThatNeverAnswersCloseNotifyIsClosedAnyway) {
  // daytime writes one line and returns: the server sends close_notify and then waits at most
  // ssl_shutdown_timeout (2 s) for ours, which never comes. The socket stays open on our side.
  start("threading", "daytime");
  auto tls = client_context().wrap_socket(connect(), false, "localhost");
  SocketFile file(tls);
  EXPECT_TRUE(file.readline().ends_with("-UTC\r\n"));
  EXPECT_EQ(tls.recv(100), "") << "the server's close_notify";
  EXPECT_TRUE(tls.ssl().close_notify_received());
  // The server's descriptor goes although we neither answer nor close.
  expect_fds_at_baseline();
  EXPECT_TRUE(tls) << "still open on our side";
}

// A thousand connections that never send a ClientHello: a normal client is still served, and
// every silent one is closed by the server at the handshake deadline (threading: a thread each,
// under max_connections; async: tasks, the oldest dropped past max_handshakes).
class TlsSilentFloodTest : public TlsFaultsTest, public testing::WithParamInterface<std::string> {};

TEST_P(TlsSilentFloodTest, AThousandSilentConnectionsDoNotStopANormalClient) {
  start(GetParam(), "upper", {"--tls-handshake-timeout", "3"});
  std::vector<Socket> silent;
  for (int i = 0; i < 1000; ++i) silent.push_back(connect());
  EXPECT_TRUE(served());
  EXPECT_TRUE(server_->wait_for_log("TLS handshake with", 1000, 60s))
      << server_->count_in_log("TLS handshake with") << " closed";
  // The server closed them: each reads EOF (or a reset) at once.
  std::size_t closed = 0;
  for (auto& s : silent) {
    char byte;
    std::error_code ec;
    s.settimeout(5s);
    const auto n = s.recv_into({&byte, 1}, ec);
    if ((n == 0 && !ec) || is_connection_lost(ec)) ++closed;
  }
  EXPECT_EQ(closed, silent.size());
  expect_fds_at_baseline();
}

INSTANTIATE_TEST_SUITE_P(Modes, TlsSilentFloodTest, testing::Values("threading", "async"),
                         mode_name);

// The certificate files the server is started with, replaced while it runs.
struct LiveFiles {
  explicit LiveFiles(const test::TlsCerts& certs)
      : cert(certs.dir + "/live.pem"), key(certs.dir + "/live.key") {
    std::filesystem::copy_file(certs.server_cert, cert);
    std::filesystem::copy_file(certs.server_key, key);
  }
  std::string cert, key;
};

TEST_F(TlsFaultsTest, SighupReloadsTheCertificateUnderAStreamOfHandshakes) {
  const LiveFiles live(certs_);
  start("threading", "upper", {}, live.cert, live.key);
  test::Process loop(test::python_client_argv(server_->port(), {"ca=" + certs_.ca_cert, "loop=3"}));
  ASSERT_EQ(loop.read_line(20s), "STARTED") << loop.err();
  test::issue_server_cert(certs_, "renewed.localhost", live.cert, live.key);
  server_->signal(SIGHUP);
  EXPECT_TRUE(server_->wait_for_log("SIGHUP: TLS certificates, keys and ticket keys reloaded"))
      << server_->log();
  std::optional<std::string> line;
  while ((line = loop.read_line(20s)) && !line->starts_with("SUMMARY")) {
    ADD_FAILURE() << "a handshake failed during the reload: " << *line;
  }
  ASSERT_TRUE(line) << loop.err();
  EXPECT_TRUE(contains(*line, " failed=0 ")) << *line;
  EXPECT_FALSE(contains(*line, " ok=0 ")) << *line;
  EXPECT_EQ(loop.wait(10s), 0) << loop.err();
  EXPECT_TRUE(served("renewed.localhost"));
  EXPECT_FALSE(contains(server_->log(), "TLS handshake with")) << server_->log();
}

TEST_F(TlsFaultsTest, BadFilesOnSighupKeepTheOldCertificate) {
  const LiveFiles live(certs_);
  start("threading", "upper", {}, live.cert, live.key);
  std::ofstream(live.cert, std::ios::trunc) << "-----BEGIN CERTIFICATE-----\nnot base64\n";
  server_->signal(SIGHUP);
  EXPECT_TRUE(server_->wait_for_log("reload failed")) << server_->log();
  EXPECT_TRUE(served("localhost"));
  // A valid certificate whose key is not the one in the key file.
  std::filesystem::copy_file(certs_.other_cert, live.cert,
                             std::filesystem::copy_options::overwrite_existing);
  server_->signal(SIGHUP);
  EXPECT_TRUE(server_->wait_for_log("reload failed", 2)) << server_->log();
  EXPECT_TRUE(served("localhost"));
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

// The same faults against an in-process threading server: its descriptors, threads, active
// count and TLS counters settle where they should.
TEST_F(TlsFaultsTest, InProcessServerCountsFailuresAndLeavesNothingBehind) {
  set_log_sink([](LogLevel, std::string_view) {});
  auto ctx = create_default_context(Purpose::CLIENT_AUTH);
  ctx.load_cert_chain(certs_.server_cert, certs_.server_key);
  ThreadingTCPServer server(test::loopback4(),
                            handler<StreamRequestHandler>([](StreamRequestHandler& self) {
                              for (const auto& line : self.rfile.lines()) self.wfile.write(line);
                            }),
                            false);
  server.set_ssl_context(std::make_shared<const SSLContext>(std::move(ctx)));
  server.ssl_handshake_timeout = 1s;
  server.ssl_shutdown_timeout = 1s;
  server.bind_and_activate();
  std::thread serving([&] { server.serve_forever(20ms); });
  const auto client_ctx = client_context();
  auto echo = [&](bool close_notify) {
    auto tls =
        client_ctx.wrap_socket(test::connect_to(server.server_address, 10s), false, "localhost");
    tls.sendall("ping\n");
    EXPECT_EQ(tls.recv_exact(5), "ping\n");
    if (close_notify) tls.shutdown(SHUT_WR);
  };
  echo(true);
  EXPECT_TRUE(test::eventually([&] { return server.stats.active.load() == 0; }));
  const auto fds = test::count_open_fds();
  {
    auto silent = test::connect_to(server.server_address, 10s);  // cut at 1 s
    EXPECT_TRUE(ended_by_server(silent));
    auto junk = test::connect_to(server.server_address, 10s);
    junk.sendall("SSH-2.0-OpenSSH_9.2\r\n");
    EXPECT_TRUE(ended_by_server(junk));
    auto vanishing = test::connect_to(server.server_address, 10s);
    vanishing.sendall(client_hello(client_ctx).substr(0, 30));
    vanishing.set_linger(0s);
  }
  echo(false);  // truncation: the handler ends by SSLEOFError
  echo(true);
  EXPECT_TRUE(test::eventually([&] {
    return server.stats.active.load() == 0 && server.stats.tls_failures.load() == 3 &&
           test::count_open_fds() == fds;
  }));
  EXPECT_EQ(server.stats.tls_failures.load(), 3u);
  EXPECT_EQ(server.stats.tls_handshakes.load(), 3u);
  EXPECT_EQ(server.stats.handler_errors.load(), 0u) << "a truncation is not a handler error";
  EXPECT_EQ(test::count_open_fds(), fds);
  server.shutdown();
  serving.join();
  server.server_close();
  set_log_sink({});
}

}  // namespace
}  // namespace sockserv
