// SPDX-License-Identifier: MIT
// Socket across address families and socket types: IPv6, Unix path and abstract sockets,
// datagrams (IPv4, IPv6, Unix) with truncation, and the factories socketpair, create_connection
// and create_server (every resolved address tried, dual stack, SO_REUSEPORT, stale Unix files).
#include <sockserv/socket.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::throws_code;

#define SKIP_WITHOUT_IPV6() \
  if (!test::ipv6_available()) GTEST_SKIP() << "no IPv6 loopback (::1) here"

// Connects to `listener` and checks one exchange each way and the addresses accept() reports.
void expect_exchange(Socket& listener, const Address& connect_to) {
  Socket client = create_connection(connect_to, 10s);
  auto [server, peer] = listener.accept();
  server.settimeout(10s);
  EXPECT_EQ(peer, client.getsockname());
  EXPECT_EQ(server.getpeername(), client.getsockname());
  EXPECT_EQ(client.getpeername(), listener.getsockname());
  client.sendall("ping");
  EXPECT_EQ(server.recv_exact(4), "ping");
  server.sendall("pong");
  EXPECT_EQ(client.recv_exact(4), "pong");
}

// ---- Stream sockets in each family -------------------------------------------------------------

TEST(SocketFamiliesTest, AcceptReturnsPeerAddressOverIpv4) {
  Socket listener = create_server(test::loopback4());
  ASSERT_NE(listener.getsockname().port(), 0);  // port 0 was replaced by a real one
  expect_exchange(listener, listener.getsockname());
}

TEST(SocketFamiliesTest, ExchangesOverIpv6Loopback) {
  SKIP_WITHOUT_IPV6();
  Socket listener = create_server(test::loopback6());
  EXPECT_EQ(listener.family(), AF_INET6);
  EXPECT_EQ(listener.getsockname().host(), "::1");
  expect_exchange(listener, listener.getsockname());
}

TEST(SocketFamiliesTest, ExchangesOverUnixPathSocket) {
  test::TempDir dir;
  const Address address = Address::unix_path(dir.path("stream.sock"));
  Socket listener = create_server(address);
  EXPECT_EQ(listener.getsockname(), address);
  Socket client = create_connection(address, 10s);
  auto [server, peer] = listener.accept();
  EXPECT_EQ(peer.to_string(), "unix:");  // the client never bound: unnamed
  client.sendall("over a file");
  EXPECT_EQ(server.recv_exact(11), "over a file");
}

TEST(SocketFamiliesTest, ExchangesOverAbstractSocketWithoutFile) {
  const Address address = Address::abstract(test::unique_abstract_name());
  Socket listener = create_server(address);
  EXPECT_TRUE(listener.getsockname().is_abstract());
  EXPECT_EQ(listener.getsockname(), address);
  Socket client = create_connection(address, 10s);
  auto [server, peer] = listener.accept();
  client.sendall("abstract");
  EXPECT_EQ(server.recv_exact(8), "abstract");
}

TEST(SocketFamiliesTest, SocketpairIsConnectedBothWays) {
  auto [a, b] = socketpair();
  EXPECT_EQ(a.family(), AF_UNIX);
  EXPECT_EQ(a.type(), SOCK_STREAM);
  a.sendall("to b");
  EXPECT_EQ(b.recv_exact(4), "to b");
  b.sendall("to a");
  EXPECT_EQ(a.recv_exact(4), "to a");
}

// ---- Datagrams ---------------------------------------------------------------------------------

// Sends one datagram each way between two bound sockets of `family`.
void expect_datagram_exchange(const Address& a_address, const Address& b_address) {
  Socket a(a_address.family(), SOCK_DGRAM);
  Socket b(b_address.family(), SOCK_DGRAM);
  a.bind(a_address);
  b.bind(b_address);
  a.settimeout(10s);
  b.settimeout(10s);
  EXPECT_EQ(a.sendto("hello b", b.getsockname()), 7u);
  auto [data, sender] = b.recvfrom(100);
  EXPECT_EQ(data, "hello b");
  EXPECT_EQ(sender, a.getsockname());
  b.sendto("hello a", sender);
  auto [reply, replier] = a.recvfrom(100);
  EXPECT_EQ(reply, "hello a");
  EXPECT_EQ(replier, b.getsockname());
}

TEST(SocketFamiliesTest, DatagramsOverIpv4) {
  expect_datagram_exchange(test::loopback4(), test::loopback4());
}

TEST(SocketFamiliesTest, DatagramsOverIpv6) {
  SKIP_WITHOUT_IPV6();
  expect_datagram_exchange(test::loopback6(), test::loopback6());
}

TEST(SocketFamiliesTest, DatagramsOverUnixPathsAndAbstractNames) {
  test::TempDir dir;
  expect_datagram_exchange(Address::unix_path(dir.path("a.sock")),
                           Address::unix_path(dir.path("b.sock")));
  expect_datagram_exchange(Address::abstract(test::unique_abstract_name()),
                           Address::abstract(test::unique_abstract_name()));
}

TEST(SocketFamiliesTest, RecvfromThrowsDatagramTruncatedWhenBufferTooSmall) {
  Socket receiver(AF_INET, SOCK_DGRAM), sender(AF_INET, SOCK_DGRAM);
  receiver.bind(test::loopback4());
  receiver.settimeout(10s);
  const std::string datagram(100, 'd');
  sender.sendto(datagram, receiver.getsockname());
  EXPECT_TRUE(throws_code<SocketError>([&] { receiver.recvfrom(10); }, errc::datagram_truncated));

  // recvfrom_into reports the same in its result, with the part that fitted.
  sender.sendto("0123456789abcdef", receiver.getsockname());
  char buffer[10];
  const RecvFromResult result = receiver.recvfrom_into(buffer);
  EXPECT_TRUE(result.truncated);
  EXPECT_EQ(result.size, 10u);
  EXPECT_EQ(std::string(buffer, 10), "0123456789");
  EXPECT_EQ(result.address.port(), sender.getsockname().port());

  sender.sendto("fits", receiver.getsockname());
  const RecvFromResult whole = receiver.recvfrom_into(buffer);
  EXPECT_FALSE(whole.truncated);
  EXPECT_EQ(whole.size, 4u);
}

TEST(SocketFamiliesTest, EmptyDatagramIsDeliveredAsEmpty) {
  Socket receiver(AF_INET, SOCK_DGRAM), sender(AF_INET, SOCK_DGRAM);
  receiver.bind(test::loopback4());
  receiver.settimeout(10s);
  EXPECT_EQ(sender.sendto("", receiver.getsockname()), 0u);
  auto [data, from] = receiver.recvfrom(10);
  EXPECT_EQ(data, "");
  EXPECT_EQ(from.port(), sender.getsockname().port());
}

TEST(SocketFamiliesTest, RecvfromOnStreamSocketReturnsTheData) {
  // Python allows recvfrom() on a connected stream socket (the address is None). MSG_TRUNC,
  // which reports a datagram's real length, means "discard the data" on TCP.
  auto [client, server] = test::tcp_pair();
  server.settimeout(10s);
  client.sendall("stream bytes");
  auto [data, from] = server.recvfrom(100);
  EXPECT_EQ(data, "stream bytes");
}

TEST(SocketFamiliesTest, SendtoErrorNamesTheDestination) {
  Socket s(AF_INET, SOCK_DGRAM);
  const Address v6 = Address::parse("[::1]:9");
  try {
    s.sendto("x", v6);  // an IPv6 destination for an IPv4 socket
    FAIL() << "sendto did not throw";
  } catch (const SocketError& e) {
    EXPECT_NE(std::string(e.what()).find("sendto [::1]:9"), std::string::npos) << e.what();
  }
}

// ---- create_connection -------------------------------------------------------------------------

TEST(SocketFamiliesTest, CreateConnectionResolvesLocalhost) {
  ServerOptions options;
  Socket listener = create_server(test::loopback4(), options);
  Socket client = create_connection("localhost", listener.getsockname().port(), 10s);
  EXPECT_EQ(client.gettimeout(), Timeout(10s));
  EXPECT_EQ(listener.accept().second, client.getsockname());
}

TEST(SocketFamiliesTest, CreateConnectionTriesEveryResolvedAddress) {
  // An empty host resolves to the loopback addresses of both families (::1 and 127.0.0.1).
  // A server on only one of them is reached whichever comes first in the resolver's order.
  SKIP_WITHOUT_IPV6();
  for (const Address& bind_to : {test::loopback4(), test::loopback6()}) {
    Socket listener = create_server(bind_to);
    const auto port = listener.getsockname().port();
    const auto resolved = getaddrinfo("", std::to_string(port), AF_UNSPEC, SOCK_STREAM);
    ASSERT_GE(resolved.size(), 2u);
    Socket client = create_connection("", port, 10s);
    EXPECT_EQ(client.family(), bind_to.family());
    EXPECT_EQ(listener.accept().second, client.getsockname());
  }
}

TEST(SocketFamiliesTest, CreateConnectionThrowsFirstErrorWhenAllFail) {
  Socket holder(AF_INET, SOCK_STREAM);
  holder.bind(test::loopback4());  // bound, not listening: connections are refused
  const auto port = holder.getsockname().port();
  EXPECT_TRUE(throws_code<SocketError>([&] { create_connection("127.0.0.1", port); },
                                       std::errc::connection_refused));
}

// ---- create_server -----------------------------------------------------------------------------

TEST(SocketFamiliesTest, CreateServerDualStackAcceptsIpv4AsMappedAddress) {
  SKIP_WITHOUT_IPV6();
  ServerOptions options;
  options.dualstack_ipv6 = true;
  Socket listener = create_server(Address::ipv6("::", 0), options);
  EXPECT_EQ(listener.getsockopt(IPPROTO_IPV6, IPV6_V6ONLY), 0);
  const auto port = listener.getsockname().port();
  Socket v4 = create_connection(Address::ipv4("127.0.0.1", port), 10s);
  const Address peer4 = listener.accept().second;
  EXPECT_TRUE(peer4.is_v4_mapped()) << peer4;
  EXPECT_EQ(peer4.unmapped(), v4.getsockname());
  Socket v6 = create_connection(Address::ipv6("::1", port), 10s);
  EXPECT_EQ(listener.accept().second, v6.getsockname());
}

TEST(SocketFamiliesTest, CreateServerIpv6IsV6OnlyByDefault) {
  SKIP_WITHOUT_IPV6();
  Socket listener = create_server(test::loopback6());
  EXPECT_EQ(listener.getsockopt(IPPROTO_IPV6, IPV6_V6ONLY), 1);
  EXPECT_EQ(listener.getsockopt(SOL_SOCKET, SO_REUSEADDR), 1);
}

TEST(SocketFamiliesTest, CreateServerReusePortLetsTwoListenersShareAPort) {
  ServerOptions options;
  options.reuse_port = true;
  Socket first = create_server(test::loopback4(), options);
  const Address address = first.getsockname();
  Socket second = create_server(address, options);
  EXPECT_EQ(second.getsockname(), address);
  // Without SO_REUSEPORT on the newcomer the port is taken.
  EXPECT_TRUE(throws_code<SocketError>([&] { create_server(address); }, std::errc::address_in_use));
}

TEST(SocketFamiliesTest, CreateServerRemovesStaleUnixSocketFile) {
  test::TempDir dir;
  const Address address = Address::unix_path(dir.path("stale.sock"));
  {
    Socket dead(AF_UNIX, SOCK_STREAM);
    dead.bind(address);  // leaves the file behind when closed, as a crashed server would
  }
  ASSERT_TRUE(std::filesystem::exists(dir.path("stale.sock")));
  Socket listener = create_server(address);
  Socket client = create_connection(address, 10s);
  EXPECT_TRUE(listener.accept().first);
}

TEST(SocketFamiliesTest, CreateServerRefusesUnixPathWithLiveServer) {
  test::TempDir dir;
  const Address address = Address::unix_path(dir.path("live.sock"));
  Socket live = create_server(address);
  try {
    create_server(address);
    FAIL() << "a second server took a live socket's path";
  } catch (const SocketError& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    EXPECT_NE(std::string(e.what()).find(address.to_string()), std::string::npos) << e.what();
  }
  Socket client = create_connection(address, 10s);  // the live server was left alone
  EXPECT_TRUE(live.accept().first);
}

TEST(SocketFamiliesTest, CreateServerLeavesNonSocketFileAlone) {
  test::TempDir dir;
  const std::string path = dir.path("regular-file");
  { std::ofstream(path) << "keep me"; }
  EXPECT_TRUE(throws_code<SocketError>([&] { create_server(Address::unix_path(path)); },
                                       std::errc::address_in_use));
  EXPECT_TRUE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace sockserv
