// SPDX-License-Identifier: MIT
// `sockserv serve --tls-*` as a real process in every mode (sync, threading, pool, forking,
// async), against three independent TLS implementations as clients: `openssl s_client`,
// Python's ssl module and `gnutls-cli`. What the server negotiated is read back through
// `--handler tlsinfo` ("version=... cipher=... alpn=... sni=... resumed=0|1 peer=..."). Also:
// versions, ALPN, SNI, client certificates (required and optional), session resumption across
// forked children and across two --reuse-port processes sharing a ticket key file, and
// `sockserv send --tls`. The certificates are made at test time (support/tls_certs.hpp).
#include <sockserv/address.hpp>

#include "support/test_support.hpp"
#include "support/tls_certs.hpp"
#include "support/tls_serving.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::contains;

// Reads `proc`'s stdout until a line equal to `wanted` (gnutls-cli prints other lines too).
bool read_until_line(test::Process& proc, const std::string& wanted) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto line = proc.read_line(
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!line) return false;
    if (*line == wanted || *line == wanted + "\r") return true;
  }
  return false;
}

class TlsServeTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_openssl()) GTEST_SKIP() << "the openssl command is not installed";
    if (!test::have_program(test::python3())) GTEST_SKIP() << "python3 is not installed";
    certs_ = test::make_tls_certs(dir_.path());
  }

  // `sockserv serve` in `mode` with the server certificate, and `extra` flags.
  std::unique_ptr<test::ServeProcess> serve(const std::string& mode, const std::string& handler,
                                            const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{
        "--mode",           mode,        "--handler",      handler, "--tls-cert",
        certs_.server_cert, "--tls-key", certs_.server_key};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<test::ServeProcess>(SOCKSERV_EXE, args);
  }

  // The Python client's one line for one connection, with the CA and `options`.
  std::string python(const test::ServeProcess& server, std::vector<std::string> options = {}) {
    options.push_back("ca=" + certs_.ca_cert);
    const auto lines = test::python_client(server.port(), options);
    return lines.size() == 1 ? lines[0] : "(" + std::to_string(lines.size()) + " lines)";
  }

  test::TempDir dir_;
  test::TlsCerts certs_;
};

class TlsServeModeTest : public TlsServeTest, public testing::WithParamInterface<std::string> {};

TEST_P(TlsServeModeTest, OpensslAndPythonEachGetAnUpperCasedEcho) {
  auto server = serve(GetParam(), "upper");
  ASSERT_TRUE(server->started());
  {
    test::Process client({"openssl", "s_client", "-connect", "127.0.0.1:" + server->port(),
                          "-CAfile", certs_.ca_cert, "-verify_return_error", "-verify_hostname",
                          "localhost", "-servername", "localhost", "-quiet"});
    ASSERT_TRUE(client.write_stdin("hello from openssl\n"));
    EXPECT_EQ(client.read_line(10s), "HELLO FROM OPENSSL") << client.err();
    client.kill(SIGTERM);  // -quiet ignores EOF on stdin; a sync server waits for this one
    client.wait(10s);
  }
  EXPECT_TRUE(python(*server, {"send=hello from python"}).starts_with("OK HELLO FROM PYTHON"));
  EXPECT_EQ(server->stop(), 0) << server->log();
}

TEST_P(TlsServeModeTest, GnutlsGetsAnUpperCasedEchoOverTls13And12) {
  if (!test::have_program("gnutls-cli")) GTEST_SKIP() << "gnutls-cli is not installed";
  auto server = serve(GetParam(), "upper");
  ASSERT_TRUE(server->started());
  // gnutls-cli connects to 127.0.0.1 and verifies that name (the certificate's IP address).
  for (const std::string priority : {"NORMAL", "NORMAL:-VERS-ALL:+VERS-TLS1.2"}) {
    test::Process client({"gnutls-cli", "--x509cafile", certs_.ca_cert, "--logfile", "/dev/null",
                          "--priority", priority, "-p", server->port(), "127.0.0.1"});
    ASSERT_TRUE(client.write_stdin("hello from gnutls\n"));
    EXPECT_TRUE(read_until_line(client, "HELLO FROM GNUTLS"))
        << priority << ": " << client.out() << client.err();
    client.close_stdin();  // gnutls-cli then sends close_notify and exits
    EXPECT_EQ(client.wait(10s), 0) << client.err();
  }
  EXPECT_EQ(server->stop(), 0) << server->log();
}

TEST_P(TlsServeModeTest, ClientForcedTls12AndDefaultTls13) {
  auto server = serve(GetParam(), "tlsinfo");
  ASSERT_TRUE(server->started());
  EXPECT_TRUE(contains(python(*server, {"max=1.2"}), "OK version=TLSv1.2 "));
  EXPECT_TRUE(contains(python(*server), "OK version=TLSv1.3 "));
  for (const std::string version : {"-tls1_2", "-tls1_3"}) {
    test::Process client({"openssl", "s_client", "-connect", "127.0.0.1:" + server->port(),
                          "-CAfile", certs_.ca_cert, "-verify_return_error", version, "-servername",
                          "localhost", "-quiet"});
    ASSERT_TRUE(client.write_stdin("x\n"));
    const auto line = client.read_line(10s);
    const std::string expected = version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3";
    EXPECT_TRUE(line && line->starts_with("version=" + expected + " "))
        << line.value_or(client.err());
    client.kill(SIGTERM);
    client.wait(10s);
  }
}

TEST_P(TlsServeModeTest, MinimumVersion13RefusesATls12OnlyClientAndGoesOn) {
  auto server = serve(GetParam(), "tlsinfo", {"--tls-min-version", "1.3"});
  ASSERT_TRUE(server->started());
  const auto refused = python(*server, {"max=1.2"});
  EXPECT_TRUE(refused.starts_with("REFUSED ")) << refused;
  EXPECT_TRUE(server->wait_for_log("TLS handshake with 127.0.0.1:")) << server->log();
  EXPECT_TRUE(contains(python(*server), "OK version=TLSv1.3 "));
}

TEST_P(TlsServeModeTest, AlpnAndSniAreNegotiatedAndShown) {
  auto server =
      serve(GetParam(), "tlsinfo",
            {"--tls-alpn", "h2,http/1.1", "--tls-sni",
             std::string(test::kOtherCN) + "=" + certs_.other_cert + "," + certs_.other_key});
  ASSERT_TRUE(server->started());
  // The client offers http/1.1 and something the server does not speak.
  auto line = python(*server, {"alpn=spdy/1,http/1.1"});
  EXPECT_TRUE(contains(line, " alpn=http/1.1 sni=localhost ")) << line;
  EXPECT_TRUE(contains(line, "| reused=0 version=TLSv1.3 alpn=http/1.1 cn=localhost")) << line;
  line = python(*server, {"alpn=h2,http/1.1", std::string("name=") + test::kOtherCN});
  EXPECT_TRUE(contains(line, " alpn=h2 sni=other.test ")) << line;
  EXPECT_TRUE(line.ends_with(std::string("cn=") + test::kOtherCN)) << line;
  line = python(*server, {"alpn=smtp"});  // no protocol in common: no ALPN, still served
  EXPECT_TRUE(contains(line, " alpn=- sni=localhost ")) << line;
}

TEST_P(TlsServeModeTest, RequiredClientCertificate) {
  auto server = serve(GetParam(), "tlsinfo", {"--tls-client-ca", certs_.ca_cert});
  ASSERT_TRUE(server->started());
  auto line = python(*server, {"cert=" + certs_.client_cert, "key=" + certs_.client_key});
  EXPECT_TRUE(contains(line, std::string(" peer=CN=") + test::kClientCN + ",O=sockserv tests |"))
      << line;
  line = python(*server);
  EXPECT_TRUE(line.starts_with("REFUSED ")) << "no certificate: " << line;
  line = python(*server, {"cert=" + certs_.untrusted_cert, "key=" + certs_.untrusted_key});
  EXPECT_TRUE(line.starts_with("REFUSED ")) << "untrusted certificate: " << line;
  EXPECT_TRUE(server->wait_for_log("TLS handshake with", 2)) << server->log();
  line = python(*server, {"cert=" + certs_.client_cert, "key=" + certs_.client_key});
  EXPECT_TRUE(line.starts_with("OK version=TLSv1.3 ")) << "still serving: " << line;
}

TEST_P(TlsServeModeTest, OptionalClientCertificate) {
  auto server =
      serve(GetParam(), "tlsinfo", {"--tls-client-ca", certs_.ca_cert, "--tls-client-optional"});
  ASSERT_TRUE(server->started());
  auto line = python(*server);
  EXPECT_TRUE(contains(line, " peer=- |")) << line;
  line = python(*server, {"cert=" + certs_.client_cert, "key=" + certs_.client_key});
  EXPECT_TRUE(contains(line, std::string(" peer=CN=") + test::kClientCN)) << line;
  // An invalid certificate is refused, not accepted as "no certificate", never shown as a peer.
  line = python(*server, {"cert=" + certs_.untrusted_cert, "key=" + certs_.untrusted_key});
  EXPECT_TRUE(line.starts_with("REFUSED ")) << line;
  EXPECT_FALSE(contains(line, "untrusted client")) << line;
  EXPECT_TRUE(server->wait_for_log("TLS handshake with")) << server->log();
}

TEST_P(TlsServeModeTest, SendCommandVerifiesTheServer) {
  auto server = serve(GetParam(), "upper");
  ASSERT_TRUE(server->started());
  const std::string address = "127.0.0.1:" + server->port();
  auto result = test::run_command(
      {SOCKSERV_EXE, "send", "--tls", "--cafile", certs_.ca_cert, address, "hello", "tls"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(contains(result.out, "Received: HELLO TLS")) << result.out;
  // By name: localhost resolves, and the certificate names it.
  result = test::run_command({SOCKSERV_EXE, "send", "--tls", "--cafile", certs_.ca_cert,
                              "--server-name", "localhost", address, "by", "name"});
  EXPECT_TRUE(contains(result.out, "Received: BY NAME")) << result.out << result.err;
  result = test::run_command({SOCKSERV_EXE, "send", "--tls", "--cafile", certs_.ca_cert,
                              "--server-name", "wrong.test", address, "x"});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_TRUE(contains(result.err, "certificate verify failed")) << result.err;
  result = test::run_command(
      {SOCKSERV_EXE, "send", "--tls", "--cafile", certs_.untrusted_cert, address, "x"});
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_TRUE(contains(result.err, "certificate verify failed")) << result.err;
  EXPECT_EQ(server->stop(), 0) << server->log();
}

std::string mode_name(const testing::TestParamInfo<std::string>& mode) { return mode.param; }

INSTANTIATE_TEST_SUITE_P(Modes, TlsServeModeTest,
                         testing::Values("sync", "threading", "pool", "forking", "async"),
                         mode_name);

// Each connection is served by a different child: the ticket the first child issued must open
// in the second one.
TEST_F(TlsServeTest, ForkedChildrenResumeEachOthersSessionsWithATicketKeyFile) {
  const auto keys = dir_.path("ticket.keys");
  test::write_ticket_keys(keys);
  auto server = serve("forking", "tlsinfo", {"--tls-ticket-keys", keys});
  ASSERT_TRUE(server->started());
  for (const std::string max : {"max=1.3", "max=1.2"}) {
    const auto lines =
        test::python_client(server->port(), {"ca=" + certs_.ca_cert, "count=2", "resume=1", max});
    ASSERT_EQ(lines.size(), 2u) << max;
    EXPECT_TRUE(contains(lines[0], " resumed=0 ")) << lines[0];
    EXPECT_TRUE(contains(lines[1], " resumed=1 ")) << max << ": " << lines[1];
    EXPECT_TRUE(contains(lines[1], "| reused=1 ")) << lines[1];
  }
}

// Two processes share the port (SO_REUSEPORT) and the ticket keys. To know which one answers,
// the first is stopped before the second connection: that one can only reach the second
// process, which resumes the first one's session. A third process with other keys cannot.
TEST_F(TlsServeTest, ReusePortProcessesSharingTicketKeysResumeEachOthersSessions) {
  const auto keys = dir_.path("shared.keys");
  const auto other_keys = dir_.path("other.keys");
  test::write_ticket_keys(keys);
  test::write_ticket_keys(other_keys);
  auto first = serve("threading", "tlsinfo", {"--reuse-port", "--tls-ticket-keys", keys});
  ASSERT_TRUE(first->started());
  const std::string port = first->port();
  auto same_port = [&](const std::string& key_file) {
    return std::make_unique<test::ServeProcess>(
        SOCKSERV_EXE,
        std::vector<std::string>{"--tcp", "127.0.0.1:" + port, "--mode", "threading", "--handler",
                                 "tlsinfo", "--reuse-port", "--tls-cert", certs_.server_cert,
                                 "--tls-key", certs_.server_key, "--tls-ticket-keys", key_file});
  };
  test::Process client(
      test::python_client_argv(port, {"ca=" + certs_.ca_cert, "count=3", "resume=1", "pause=1"}));
  const auto one = client.read_line(20s);
  ASSERT_TRUE(one) << client.err();
  EXPECT_TRUE(contains(*one, "OK version=TLSv1.3 ")) << *one;

  auto second = same_port(keys);
  ASSERT_TRUE(second->started());
  EXPECT_EQ(second->address().port(), first->address().port());
  EXPECT_EQ(first->stop(), 0) << first->log();
  ASSERT_TRUE(client.write_stdin("\n"));
  const auto two = client.read_line(20s);
  ASSERT_TRUE(two) << client.err();
  EXPECT_TRUE(contains(*two, " resumed=1 ")) << "the second process resumed: " << *two;

  auto third = same_port(other_keys);
  ASSERT_TRUE(third->started());
  EXPECT_EQ(second->stop(), 0) << second->log();
  ASSERT_TRUE(client.write_stdin("\n"));
  const auto three = client.read_line(20s);
  ASSERT_TRUE(three) << client.err();
  EXPECT_TRUE(contains(*three, "OK version=TLSv1.3 ")) << *three;
  EXPECT_TRUE(contains(*three, " resumed=0 ")) << "other keys cannot open the ticket: " << *three;
  EXPECT_EQ(client.wait(10s), 0) << client.err();
}

// The command refuses what cannot work, with a message, before it serves anything.
TEST_F(TlsServeTest, CommandRefusesTlsOnDatagramsAndMalformedSniEntries) {
  auto result = test::run_command({SOCKSERV_EXE, "serve", "--udp", "127.0.0.1:0", "--tls-cert",
                                   certs_.server_cert, "--tls-key", certs_.server_key});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.err, "TLS needs a stream transport")) << result.err;
  result = test::run_command({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--tls-cert",
                              certs_.server_cert, "--tls-key", certs_.server_key, "--tls-sni",
                              "no-equals-sign"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.err, "expected NAME=CERT,KEY")) << result.err;
  result = test::run_command({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--tls-cert",
                              certs_.server_cert, "--tls-key", certs_.other_key});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.err, "load_cert_chain")) << result.err;  // a key of another cert
}

}  // namespace
}  // namespace sockserv
