// SPDX-License-Identifier: MIT
// `sockserv serve` with --allow/--deny, --max-per-client, --rate-per-client and --proxy-from, in
// every mode, against real clients connecting from several loopback addresses (127.0.0.2,
// 127.0.0.3, ...: all of 127.0.0.0/8 is the loopback interface's). A refused client is closed
// before anything is read from it (it sees EOF, or a reset if its bytes were already queued);
// the final counters (--stats) count each refusal as denied or limited.
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/net_namespace.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::last_value;

// A client connected to `server` from the loopback address `source`.
Socket connect_from(const char* source, const Address& server) {
  Socket sock(AF_INET, SOCK_STREAM);
  sock.bind(Address::ipv4(source, 0));
  sock.settimeout(10s);
  sock.connect(server);
  return sock;
}

// Sends `what` (a line, after an optional PROXY header) and reads the whoami reply: the address
// the server saw, or nullopt when the server closed the connection without replying.
std::optional<std::string> ask(Socket& sock, const std::string& what = "who\n") {
  try {
    sock.sendall(what);
    const std::string line = test::recv_line(sock);
    if (line.empty()) return std::nullopt;
    return line.substr(0, line.size() - 1);
  } catch (const ConnectionError&) {  // reset: closed with our bytes unread
    return std::nullopt;
  }
}

struct Server {
  explicit Server(const std::string& mode, std::vector<std::string> extra,
                  const std::string& listen = "127.0.0.1:0") {
    std::vector<std::string> argv{SOCKSERV_EXE, "serve",     "--tcp",  listen,    "--mode",
                                  mode,         "--handler", "whoami", "--stats", "30"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (mode == "async") argv.insert(argv.end(), {"--threads", "2"});
    proc.emplace(argv);
    const auto banner = proc->read_line(20s);
    if (!banner || !banner->starts_with("listening on ")) {
      ADD_FAILURE() << "no banner: " << proc->err();
      return;
    }
    address = Address::parse(banner->substr(13));
  }
  // Stops the server (SIGTERM: drain) and returns what it logged, final counters included.
  std::string stop() {
    proc->kill(SIGTERM);
    EXPECT_EQ(proc->wait(20s), 0) << proc->err();
    proc->read_to_eof(5s);
    return proc->err();
  }
  std::optional<test::Process> proc;
  Address address;
};

class AccessServeTest : public testing::TestWithParam<std::string> {};

TEST_P(AccessServeTest, DenyWinsAndAnAllowListAdmitsOnlyItsRanges) {
  Server server(GetParam(), {"--allow", "127.0.0.0/29", "--deny", "127.0.0.3/32"});
  {
    auto in = connect_from("127.0.0.2", server.address);
    EXPECT_EQ(ask(in).value_or("refused").substr(0, 10), "127.0.0.2:");
  }
  {
    auto denied = connect_from("127.0.0.3", server.address);  // in the allow range, but denied
    EXPECT_EQ(ask(denied), std::nullopt);
  }
  {
    auto outside = connect_from("127.0.0.9", server.address);  // not on the allow list
    EXPECT_EQ(ask(outside), std::nullopt);
  }
  {
    auto again = connect_from("127.0.0.4", server.address);  // the server goes on serving
    EXPECT_EQ(ask(again).value_or("refused").substr(0, 10), "127.0.0.4:");
  }
  const std::string log = server.stop();
  EXPECT_EQ(last_value(log, "denied"), 2) << log;
  EXPECT_EQ(last_value(log, "limited"), 0) << log;
  EXPECT_EQ(last_value(log, "rejected"), 2) << log;
  EXPECT_NE(log.find("refused 127.0.0.3:"), std::string::npos) << log;
  EXPECT_NE(log.find("denied by the address rules"), std::string::npos) << log;
}

TEST_P(AccessServeTest, TheRatePerClientIsATokenBucket) {
  // A token every 1,000 s after a burst of 2: the third connection is over the rate whatever
  // the test's speed.
  Server server(GetParam(), {"--rate-per-client", "0.001/2"});
  for (int i = 0; i < 2; ++i) {
    auto sock = connect_from("127.0.0.5", server.address);
    EXPECT_TRUE(ask(sock).has_value()) << i;
  }
  {
    auto over = connect_from("127.0.0.5", server.address);
    EXPECT_EQ(ask(over), std::nullopt);
  }
  {
    auto other = connect_from("127.0.0.6", server.address);
    EXPECT_TRUE(ask(other).has_value());
  }
  const std::string log = server.stop();
  EXPECT_EQ(last_value(log, "limited"), 1) << log;
  EXPECT_NE(log.find("over the per-client connection rate"), std::string::npos) << log;
}

TEST_P(AccessServeTest, OneClientCannotHoldMoreThanItsShare) {
  if (GetParam() == "sync") GTEST_SKIP() << "a sync server holds one connection at a time";
  Server server(GetParam(), {"--max-per-client", "2"});
  std::vector<Socket> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(connect_from("127.0.0.2", server.address));
    ASSERT_TRUE(ask(held.back()).has_value()) << i;  // served, and still open
  }
  {
    auto third = connect_from("127.0.0.2", server.address);
    EXPECT_EQ(ask(third), std::nullopt);
  }
  {
    auto other = connect_from("127.0.0.3", server.address);
    EXPECT_TRUE(ask(other).has_value());
  }
  held.pop_back();  // closed: once its handler ends, the client has a place again
  bool admitted = false;
  for (int attempt = 0; attempt < 100 && !admitted; ++attempt) {
    auto sock = connect_from("127.0.0.2", server.address);
    admitted = ask(sock).has_value();
    if (!admitted) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(admitted);
  held.clear();
  const std::string log = server.stop();
  EXPECT_GE(last_value(log, "limited"), 1) << log;
  EXPECT_NE(log.find("over the per-client connection limit"), std::string::npos) << log;
}

TEST_P(AccessServeTest, ProxyHeadersAreBelievedOnlyFromTrustedPeersAndTheRulesSeeTheClient) {
  Server server(GetParam(),
                {"--proxy-protocol", "--proxy-from", "127.0.0.2/32", "--deny", "192.0.2.0/24"});
  const std::string from_client = "PROXY TCP4 198.51.100.7 127.0.0.1 5555 9999\r\n";
  const std::string from_denied = "PROXY TCP4 192.0.2.9 127.0.0.1 5555 9999\r\n";
  {
    auto proxy = connect_from("127.0.0.2", server.address);
    EXPECT_EQ(ask(proxy, from_client + "who\n"), "198.51.100.7:5555");
  }
  {
    auto proxy = connect_from("127.0.0.2", server.address);  // the client it names is denied
    EXPECT_EQ(ask(proxy, from_denied + "who\n"), std::nullopt);
  }
  {
    auto stranger = connect_from("127.0.0.3", server.address);  // may not claim an address
    EXPECT_EQ(ask(stranger, from_client + "who\n"), std::nullopt);
  }
  const std::string log = server.stop();
  // The first refusal is logged; the second, within the same second, only counted.
  EXPECT_NE(log.find("refused 192.0.2.9:5555"), std::string::npos) << log;
  // A forking server checks the named client in the child, which hands its counts to the parent.
  EXPECT_EQ(last_value(log, "denied"), 2) << log;
}

TEST_P(AccessServeTest, DatagramsFromDeniedClientsAreDropped) {
  std::vector<std::string> argv{SOCKSERV_EXE, "serve",    "--udp",     "127.0.0.1:0",
                                "--mode",     GetParam(), "--handler", "whoami",
                                "--stats",    "30",       "--deny",    "127.0.0.3"};
  test::Process proc(argv);
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();
  const Address address = Address::parse(banner->substr(13));
  Socket denied(AF_INET, SOCK_DGRAM);
  denied.bind(Address::ipv4("127.0.0.3", 0));
  denied.sendto("who", address);
  Socket allowed(AF_INET, SOCK_DGRAM);
  allowed.bind(Address::ipv4("127.0.0.2", 0));
  allowed.settimeout(10s);
  allowed.sendto("who", address);
  // Sent after the denied one on the same path: once it is answered, the other was handled.
  EXPECT_EQ(allowed.recv(100).substr(0, 10), "127.0.0.2:");
  proc.kill(SIGTERM);
  EXPECT_EQ(proc.wait(20s), 0) << proc.err();
  proc.read_to_eof(5s);
  EXPECT_EQ(last_value(proc.err(), "denied"), 1) << proc.err();
}

INSTANTIATE_TEST_SUITE_P(Modes, AccessServeTest,
                         testing::Values("sync", "threading", "pool", "forking", "async"));

// Issue 11, forking mode under load: idle connections (more than there are children) do not
// occupy the children, so a fresh client is served at once; the kernel holds the silent ones
// back (TCP_DEFER_ACCEPT) and the server closes them, unforked, when their time is up.
TEST(ForkingUnderLoadTest, IdleConnectionsDoNotOccupyTheChildren) {
  test::Process proc({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--mode", "forking",
                      "--max-connections", "4", "--first-bytes-timeout", "1", "--handler", "whoami",
                      "--stats", "30"});
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();
  const Address address = Address::parse(banner->substr(13));
  std::vector<Socket> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(test::connect_to(address, 20s));
  {
    auto fresh = connect_from("127.0.0.2", address);
    EXPECT_EQ(ask(fresh).value_or("refused").substr(0, 10), "127.0.0.2:");
  }
  // The idle ones are closed without a reply once the kernel lets them through (about 1-3 s;
  // each recv waits up to 20 s, the watchdog of this test, not an assertion on the time).
  for (auto& sock : idle) EXPECT_EQ(sock.recv(16), "");
  proc.kill(SIGTERM);
  EXPECT_EQ(proc.wait(20s), 0) << proc.err();
  proc.read_to_eof(5s);
  EXPECT_EQ(last_value(proc.err(), "timed_out"), 20) << proc.err();
  EXPECT_EQ(last_value(proc.err(), "accepted"), 21) << proc.err();
}

// IPv6 clients from several addresses, in a network namespace the test makes (only there can
// it give the loopback 2001:db8::/32 documentation addresses): a client is its /64 by default,
// its address with --client-prefix-v6 128; IPv6 deny ranges; an IPv4 client of a dual-stack
// listener (an IPv4-mapped peer) meets the IPv4 rules.
class AccessNamespaceTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!ns_.created()) GTEST_SKIP() << "needs root (ip netns add)";
    for (const char* address :
         {"2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3", "2001:db8:2::1", "2001:db8:3::1"}) {
      ASSERT_TRUE(ns_.exec(
          {"ip", "-6", "addr", "add", std::string(address) + "/64", "dev", "lo", "nodad"}));
    }
  }
  static Socket connect6_from(const char* source, const Address& server) {
    Socket sock(AF_INET6, SOCK_STREAM);
    sock.bind(Address::ipv6(source, 0));
    sock.settimeout(10s);
    sock.connect(server);
    return sock;
  }
  test::NetNamespace ns_{"sockserv-ac-"};
};

TEST_F(AccessNamespaceTest, AnIPv6ClientIsItsPrefix) {
  for (const std::string mode : {"threading", "async"}) {
    SCOPED_TRACE(mode);
    ns_.inside([&] {
      Server server(mode, {"--max-per-client", "1", "--deny", "2001:db8:3::/48"},
                    "[2001:db8:1::1]:0");
      auto held = connect6_from("2001:db8:1::2", server.address);
      EXPECT_TRUE(ask(held).has_value());
      {
        auto same_64 = connect6_from("2001:db8:1::3", server.address);
        EXPECT_EQ(ask(same_64), std::nullopt);
      }
      {
        auto other_64 = connect6_from("2001:db8:2::1", server.address);
        EXPECT_EQ(ask(other_64).value_or("refused").substr(0, 15), "[2001:db8:2::1]");
      }
      {
        auto denied = connect6_from("2001:db8:3::1", server.address);
        EXPECT_EQ(ask(denied), std::nullopt);
      }
      held.close();  // so the drain at stop() has nothing to wait for
      const std::string log = server.stop();
      EXPECT_EQ(last_value(log, "limited"), 1) << log;
      EXPECT_EQ(last_value(log, "denied"), 1) << log;
    });
  }
}

TEST_F(AccessNamespaceTest, WithPrefix128EachAddressIsAClient) {
  ns_.inside([&] {
    Server server("async", {"--max-per-client", "1", "--client-prefix-v6", "128"},
                  "[2001:db8:1::1]:0");
    auto first = connect6_from("2001:db8:1::2", server.address);
    EXPECT_TRUE(ask(first).has_value());
    auto second = connect6_from("2001:db8:1::3", server.address);
    EXPECT_TRUE(ask(second).has_value());
    first.close();
    second.close();
    const std::string log = server.stop();
    EXPECT_EQ(last_value(log, "limited"), -1) << log;  // nobody refused: no counter printed
  });
}

TEST_F(AccessNamespaceTest, AnIPv4ClientOfADualStackListenerMeetsTheIPv4Rules) {
  ns_.inside([&] {
    Server server("threading", {"--deny", "127.0.0.5/32"}, "[::]:0");
    const Address v4_server = Address::ipv4("127.0.0.1", server.address.port());
    {
      auto denied = connect_from("127.0.0.5", v4_server);
      EXPECT_EQ(ask(denied), std::nullopt);
    }
    {
      auto allowed = connect_from("127.0.0.6", v4_server);
      EXPECT_NE(ask(allowed).value_or("refused").find("127.0.0.6"), std::string::npos);
    }
    const std::string log = server.stop();
    EXPECT_EQ(last_value(log, "denied"), 1) << log;
  });
}

TEST(AccessServeOptionsTest, ABadRangeIsOneClearLine) {
  test::Process proc({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--deny", "10.0.0.1/8"});
  EXPECT_EQ(proc.wait(20s), 1);
  proc.read_to_eof(5s);
  EXPECT_NE(proc.err().find("--deny: address range \"10.0.0.1/8\": bits are set past the prefix"),
            std::string::npos)
      << proc.err();
}

TEST(AccessServeOptionsTest, ProxyProtocolWithoutTrustedRangesWarns) {
  test::Process proc({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--proxy-protocol"});
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();
  proc.kill(SIGTERM);
  EXPECT_EQ(proc.wait(20s), 0);
  proc.read_to_eof(5s);
  EXPECT_NE(proc.err().find("--proxy-protocol without --proxy-from"), std::string::npos)
      << proc.err();
}

}  // namespace
}  // namespace sockserv
