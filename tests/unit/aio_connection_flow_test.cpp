// SPDX-License-Identifier: MIT
// aio::Connection flow control and connection life: sendall's backpressure against a slow reader
// (the connection buffers nothing of its own), half-close in both directions, open_connection()
// over TCP and Unix sockets, and its errors.
#include <sockserv/aio/connection.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/timeout.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/sockios.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;
using test::throws_code;

// This process's resident set size in KiB (VmRSS in /proc/self/status).
long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Bytes queued in the kernel for `fd`: not yet acknowledged (send side) or not yet read.
int queued(int fd, unsigned long request) {
  int n = 0;
  return ::ioctl(fd, request, &n) == 0 ? n : -1;
}

// n bytes repeating with a period (65,543) that no power-of-two chunk size divides, so a lost or
// repeated chunk shows.
std::string pattern(std::size_t n) {
  std::string block(65536 + 7, '\0');
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i % 251);
  std::string out;
  out.reserve(n + block.size());
  while (out.size() < n) out.append(block);
  out.resize(n);
  return out;
}

// ---- Backpressure ----------------------------------------------------------------------------

TEST(ConnectionFlowTest, SendallToASlowReaderWaitsInsteadOfBuffering) {
  constexpr std::size_t total = 16 << 20;
  const std::string data = pattern(total);
  auto [mine, peer] = test::tcp_pair();
  // Small kernel buffers, so "what the kernel holds" is clearly less than what is being sent.
  mine.set_send_buffer_size(64 << 10);
  peer.set_recv_buffer_size(64 << 10);
  const int sender_fd = mine.fileno();
  const int reader_fd = peer.fileno();
  EventLoop loop;
  bool sent = false;
  auto sender = [](Socket sock, const std::string& bytes, bool& done) -> Task<void> {
    Connection conn(std::move(sock));
    co_await conn.sendall(bytes);
    done = true;
  };
  loop.spawn(sender(std::move(mine), data, sent));

  // Phase 1: nobody reads. After many iterations the sender is still suspended, and what left it
  // is only what the kernel's buffers hold - a small fraction of the total.
  auto idle = []() -> Task<void> {
    for (int i = 0; i < 50; ++i) co_await sleep(1ms);
  };
  loop.run_until_complete(idle());
  EXPECT_FALSE(sent);
  const long in_kernel = queued(sender_fd, SIOCOUTQ) + queued(reader_fd, SIOCINQ);
  EXPECT_GT(in_kernel, 0);
  EXPECT_LT(in_kernel, static_cast<long>(total / 4));
  const long rss_before = rss_kib();

  // Phase 2: a slow reader (small reads) takes everything; the sender completes.
  std::atomic<bool> intact{false};
  std::thread reader([&, sock = std::move(peer)]() mutable {
    std::string got;
    got.reserve(total);
    char buf[65536];
    sock.settimeout(10s);
    while (got.size() < total) {
      const std::size_t n = sock.recv_into(buf);
      if (n == 0) break;
      got.append(buf, n);
    }
    intact = got == data;
  });
  auto until_sent = [](bool& done) -> Task<void> {
    const auto deadline = Clock::now() + 30s;
    while (!done && Clock::now() < deadline) co_await sleep(1ms);
  };
  loop.run_until_complete(until_sent(sent));
  reader.join();
  EXPECT_TRUE(sent);
  EXPECT_TRUE(intact.load());
  // The reader thread's own copy of the data is the only large allocation (the connection copies
  // nothing): allow it plus a margin.
  EXPECT_LT(rss_kib() - rss_before, static_cast<long>(total / 1024) + 16 * 1024);
}

// ---- Half-close --------------------------------------------------------------------------------

TEST(ConnectionFlowTest, PeerShutdownWrGivesEofAndTheReplyStillGoesThrough) {
  auto [mine, peer] = test::tcp_pair();
  peer.sendall("request\n");
  peer.shutdown(SHUT_WR);  // "I am done sending": the HOWTO's half-close
  EventLoop loop;
  auto server = [](Socket sock) -> Task<std::string> {
    Connection conn(std::move(sock));
    std::string request = co_await conn.readline();
    EXPECT_EQ(co_await conn.readline(), "");  // EOF
    co_await conn.sendall("reply to " + request);
    co_return request;
  };
  EXPECT_EQ(loop.run_until_complete(server(std::move(mine))), "request\n");
  peer.settimeout(5s);
  EXPECT_EQ(peer.recv_exact(17), "reply to request\n");
  EXPECT_EQ(peer.recv(10), "");  // the connection closed when the task ended
}

TEST(ConnectionFlowTest, ShutdownWrSendsEofButTheConnectionKeepsReading) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  auto task = [](Socket sock, Socket& other) -> Task<std::string> {
    Connection conn(std::move(sock));
    co_await conn.sendall("last words");
    conn.shutdown(SHUT_WR);
    // The peer sees EOF and answers; we can still read the answer.
    other.settimeout(5s);
    std::string got = other.recv_exact(10);
    EXPECT_EQ(got, "last words");
    EXPECT_EQ(other.recv(1), "");
    other.sendall("answer");
    other.shutdown(SHUT_WR);
    std::string answer;
    for (std::string s; !(s = co_await conn.recv()).empty();) answer += s;
    co_return answer;
  };
  EXPECT_EQ(loop.run_until_complete(task(std::move(mine), peer)), "answer");
}

TEST(ConnectionFlowTest, CloseReleasesTheDescriptorAndIsIdempotent) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  auto task = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    EXPECT_TRUE(conn);
    EXPECT_GE(conn.fileno(), 0);
    conn.close();
    conn.close();
    EXPECT_EQ(conn.fileno(), -1);
    co_return;
  };
  loop.run_until_complete(task(std::move(mine)));
  peer.settimeout(5s);
  EXPECT_EQ(peer.recv(1), "");
}

TEST(ConnectionFlowTest, OwnerAndConnectionMayEndInEitherOrder) {
  // set_owner() links a connection and the task state its hang-up cancels; whichever ends
  // first unlinks (ASan would report the dangling side).
  auto [a, peer_a] = socketpair();
  auto [b, peer_b] = socketpair();
  EventLoop loop;
  auto task = [](Socket first, Socket second) -> Task<void> {
    auto owner = std::make_unique<CancelState>();
    Connection outliving(std::move(first));
    outliving.set_owner(owner.get());
    EXPECT_NE(owner->hangup_watch, nullptr);
    owner.reset();  // the task state ends first
    outliving.close();

    CancelState survivor;
    {
      Connection short_lived(std::move(second));
      short_lived.set_owner(&survivor);
    }  // the connection ends first
    EXPECT_EQ(survivor.hangup_watch, nullptr);
    co_return;
  };
  loop.run_until_complete(task(std::move(a), std::move(b)));
}

// ---- open_connection -------------------------------------------------------------------------

// Connects with open_connection(), says `greeting`, and returns the peer address it saw.
Task<Address> connect_and_greet(Address address, std::string greeting) {
  Connection conn = co_await open_connection(address, 5s);
  co_await conn.sendall(greeting);
  co_return conn.peer_address();
}

void expect_greeting_arrives(Socket& listener, const std::string& greeting) {
  listener.settimeout(5s);
  auto [sock, from] = listener.accept();
  sock.settimeout(5s);
  EXPECT_EQ(sock.recv_exact(greeting.size()), greeting);
  EXPECT_EQ(sock.recv(1), "");
}

TEST(OpenConnectionTest, ConnectsOverTcpLoopback) {
  Socket listener(AF_INET, SOCK_STREAM);
  listener.bind(test::loopback4());
  listener.listen();
  const Address address = listener.getsockname();
  EventLoop loop;
  EXPECT_EQ(loop.run_until_complete(connect_and_greet(address, "hi over tcp")), address);
  expect_greeting_arrives(listener, "hi over tcp");
}

TEST(OpenConnectionTest, ConnectsOverIpv6Loopback) {
  if (!test::ipv6_available()) GTEST_SKIP() << "no ::1 on this machine";
  Socket listener(AF_INET6, SOCK_STREAM);
  listener.bind(test::loopback6());
  listener.listen();
  EventLoop loop;
  loop.run_until_complete(connect_and_greet(listener.getsockname(), "hi over ipv6"));
  expect_greeting_arrives(listener, "hi over ipv6");
}

TEST(OpenConnectionTest, ConnectsToUnixPathAndAbstractSockets) {
  test::TempDir dir;
  for (const auto& address :
       {Address::unix_path(dir.path("s.sock")), Address::abstract(test::unique_abstract_name())}) {
    SCOPED_TRACE(address.to_string());
    Socket listener(AF_UNIX, SOCK_STREAM);
    listener.bind(address);
    listener.listen();
    EventLoop loop;
    loop.run_until_complete(connect_and_greet(address, "hi over unix"));
    expect_greeting_arrives(listener, "hi over unix");
  }
}

TEST(OpenConnectionTest, RefusedConnectionThrowsSocketErrorConnectionRefused) {
  // A bound socket that does not listen: the kernel answers a SYN with a reset.
  Socket closed_port(AF_INET, SOCK_STREAM);
  closed_port.bind(test::loopback4());
  const Address address = closed_port.getsockname();
  EventLoop loop;
  EXPECT_TRUE(
      throws_code<SocketError>([&] { loop.run_until_complete(connect_and_greet(address, "x")); },
                               std::errc::connection_refused));
}

TEST(OpenConnectionTest, MissingUnixPathThrowsSocketError) {
  test::TempDir dir;
  EventLoop loop;
  const auto address = Address::unix_path(dir.path("nobody-listens.sock"));
  EXPECT_TRUE(
      throws_code<SocketError>([&] { loop.run_until_complete(connect_and_greet(address, "x")); },
                               std::errc::no_such_file_or_directory));
}

// A connect timeout needs a peer that never answers, which loopback cannot provide (the suite
// uses no other addresses), so the connect-timeout path is not tested here.

}  // namespace
}  // namespace sockserv::aio
