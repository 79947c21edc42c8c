// SPDX-License-Identifier: MIT
// Issue 13, items 2 and 5: the options both server families have share their names and defaults
// (docs/python-mapping.md, "Blocking and event-loop servers"), and the event-loop servers run
// one loop unless told otherwise, so handlers sharing plain data do not race.
#include <sockserv/aio/server.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/server.hpp>

#include "support/aio_serving.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace sockserv {
namespace {

using namespace std::chrono_literals;

aio::Task<void> nothing(aio::Connection) { co_return; }
aio::Task<void> nothing_dgram(aio::Datagram) { co_return; }
void blocking_nothing(Request&, const Address&, BaseServer&) {}

TEST(ServerVocabularyTest, AsyncServersRunOneLoopByDefault) {
  aio::AsyncTCPServer tcp(test::loopback4(), nothing, false);
  aio::AsyncUDPServer udp(test::loopback4(), nothing_dgram, false);
  EXPECT_EQ(tcp.threads, 1U);
  EXPECT_EQ(udp.threads, 1U);
}

TEST(ServerVocabularyTest, SharedOptionsHaveTheSameDefaultsInBothFamilies) {
  TCPServer tcp(test::loopback4(), blocking_nothing, false);
  aio::AsyncTCPServer async_tcp(test::loopback4(), nothing, false);
  EXPECT_EQ(tcp.allow_reuse_address, async_tcp.allow_reuse_address);
  EXPECT_TRUE(async_tcp.allow_reuse_address);
  EXPECT_EQ(tcp.allow_reuse_port, async_tcp.allow_reuse_port);
  EXPECT_EQ(tcp.request_queue_size, async_tcp.request_queue_size);
  EXPECT_EQ(tcp.connection_timeout, async_tcp.connection_timeout);
  EXPECT_EQ(tcp.keepalive.has_value(), async_tcp.keepalive.has_value());
  EXPECT_EQ(tcp.tcp_user_timeout, async_tcp.tcp_user_timeout);
  EXPECT_EQ(tcp.proxy_protocol, async_tcp.proxy_protocol);
  EXPECT_EQ(tcp.ssl_handshake_timeout, async_tcp.ssl_handshake_timeout);
  // Python's StreamRequestHandler.disable_nagle_algorithm, on the async server.
  EXPECT_FALSE(async_tcp.disable_nagle_algorithm);

  UDPServer udp(test::loopback4(), blocking_nothing, false);
  aio::AsyncUDPServer async_udp(test::loopback4(), nothing_dgram, false);
  EXPECT_FALSE(udp.allow_reuse_address);
  EXPECT_FALSE(async_udp.allow_reuse_address);
  EXPECT_EQ(udp.max_packet_size, async_udp.max_packet_size);
}

// Why streams default to SO_REUSEADDR: the server closes first, so its side of the connection
// sits in TIME_WAIT; a server started again on the same port must still bind.
TEST(ServerVocabularyTest, TCPServerRestartsOnAPortWithTimeWaitConnections) {
  Address address;
  {
    TCPServer server(test::loopback4(),
                     [](Request& r, const Address&, BaseServer&) { r.sendall("bye\n"); });
    address = server.server_address;
    std::thread serving([&] { server.handle_request(); });
    Socket client = test::connect_to(address);
    EXPECT_EQ(test::recv_line(client), "bye\n");
    serving.join();
    EXPECT_TRUE(test::ended_by_server(client));  // the server sent FIN first: TIME_WAIT is its
  }
  EXPECT_NO_THROW(TCPServer(address, blocking_nothing));
}

// A second datagram server on a port in use must fail, not share it silently.
TEST(ServerVocabularyTest, DatagramServersRefuseAPortInUse) {
  UDPServer first(test::loopback4(), blocking_nothing);
  EXPECT_TRUE(test::throws_code<SocketError>(
      [&] { UDPServer second(first.server_address, blocking_nothing); },
      std::errc::address_in_use));
  EXPECT_TRUE(test::throws_code<SocketError>(
      [&] { aio::AsyncUDPServer second(first.server_address, nothing_dgram); },
      std::errc::address_in_use));
}

std::string nodelay_seen_by_handler(bool disable_nagle_algorithm) {
  aio::AsyncTCPServer server(
      test::loopback4(),
      [](aio::Connection conn) -> aio::Task<void> {
        co_await conn.sendall(conn.socket().get_nodelay() ? "nodelay\n" : "nagle\n");
      },
      false);
  server.disable_nagle_algorithm = disable_nagle_algorithm;
  server.bind_and_activate();
  test::Serving serving(server);
  Socket client = test::connect_to(server.server_address);
  return test::recv_line(client);
}

TEST(ServerVocabularyTest, AsyncDisableNagleAlgorithmSetsNodelayOnEveryConnection) {
  EXPECT_EQ(nodelay_seen_by_handler(false), "nagle\n");
  EXPECT_EQ(nodelay_seen_by_handler(true), "nodelay\n");
}

}  // namespace
}  // namespace sockserv
