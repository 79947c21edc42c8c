// SPDX-License-Identifier: MIT
// Socket data transfer over TCP loopback, the HOWTO's "Using a Socket" and "Disconnecting":
// partial sends and receives, the send/receive loops (sendall, recv_exact), the ways a connection
// ends (orderly EOF, close mid-message, reset, half-close, graceful_close) and timeouts.
#include <sockserv/socket.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/time.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <thread>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::throws_code;

// The SO_RCVTIMEO / SO_SNDTIMEO the kernel holds for `sock` (0: none).
std::chrono::microseconds kernel_timer(const Socket& sock, int option) {
  timeval tv{};
  socklen_t len = sizeof tv;
  EXPECT_EQ(::getsockopt(sock.fileno(), SOL_SOCKET, option, &tv, &len), 0);
  return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

// Bytes that differ from position to position, so a reordering or a lost chunk shows.
std::string pattern(std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 31 + i / 251) % 251);
  return out;
}

// Reads until the peer closes (each recv bounded by the socket's timeout).
std::string recv_to_eof(Socket& sock) {
  std::string all;
  for (;;) {
    std::string chunk = sock.recv(65536);
    if (chunk.empty()) return all;
    all += chunk;
  }
}

// ---- Partial sends and receives ----------------------------------------------------------------

TEST(SocketIoTest, SendReturnsPartialCountWhenNonBlockingBufferFills) {
  auto [client, server] = test::tcp_pair();
  client.set_send_buffer_size(4096);
  server.set_recv_buffer_size(4096);
  client.setblocking(false);
  const std::string big(4 << 20, 'x');
  const std::size_t sent = client.send(big);
  EXPECT_GT(sent, 0u);
  EXPECT_LT(sent, big.size());
  // Keep offering until the kernel takes nothing more: then send() reports EAGAIN.
  std::error_code ec;
  for (int i = 0; i < 10000 && !ec; ++i) client.send(big, ec);
  EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
}

TEST(SocketIoTest, RecvReturnsWhatHasArrivedWithoutWaitingForBufsize) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(10s);
  client.sendall("abc");
  EXPECT_EQ(server.recv(4096), "abc");
  client.sendall("defgh");
  char buffer[3];
  EXPECT_EQ(server.recv_into(buffer), 3u);  // the rest stays queued
  EXPECT_EQ(std::string(buffer, 3), "def");
  EXPECT_EQ(server.recv(4096), "gh");
}

TEST(SocketIoTest, SendallDeliversSeveralMiBToSlowReader) {
  auto [client, server] = test::tcp_pair();
  client.set_send_buffer_size(65536);  // small enough for many partial sends, large enough
  server.set_recv_buffer_size(65536);  // not to fall into delayed-ACK stalls
  client.settimeout(60s);
  server.settimeout(60s);
  const std::string data = pattern(6 << 20);
  std::string received;
  std::thread reader([&] {
    char chunk[997];  // small, odd-sized reads: many partial sends on the other side
    for (std::size_t n; (n = server.recv_into(chunk)) > 0;) received.append(chunk, n);
  });
  client.sendall(data);
  client.shutdown(SHUT_WR);
  reader.join();
  EXPECT_EQ(received.size(), data.size());
  EXPECT_TRUE(received == data);
}

TEST(SocketIoTest, RecvExactAssemblesOneByteWrites) {
  auto [client, server] = test::tcp_pair();
  client.set_nodelay(true);
  server.settimeout(30s);
  const std::string message = pattern(300);
  std::thread writer([&] {
    for (char c : message) EXPECT_EQ(client.send(std::string_view(&c, 1)), 1u);
  });
  EXPECT_EQ(server.recv_exact(message.size()), message);
  writer.join();
  EXPECT_EQ(server.recv_exact(0), "");
}

// ---- How a connection ends ---------------------------------------------------------------------

TEST(SocketIoTest, RecvReturnsEmptyAfterOrderlyClose) {
  auto [client, server] = test::tcp_pair();
  client.settimeout(10s);
  server.sendall("last words");
  server.close();
  EXPECT_EQ(recv_to_eof(client), "last words");
  EXPECT_EQ(client.recv(10), "");  // "You will not receive any more data on this connection."
}

TEST(SocketIoTest, RecvExactThrowsConnectionBrokenWhenPeerClosesMidMessage) {
  auto [client, server] = test::tcp_pair();
  client.settimeout(10s);
  server.sendall("abc");
  server.close();
  try {
    (void)client.recv_exact(10);
    FAIL() << "recv_exact did not throw";
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.code(), errc::connection_broken);
    EXPECT_NE(std::string(e.what()).find("got 3 of 10"), std::string::npos) << e.what();
  }
}

TEST(SocketIoTest, RecvThrowsConnectionResetWhenPeerAborts) {
  auto [client, server] = test::tcp_pair();
  client.settimeout(10s);
  server.set_linger(0s);  // close() now sends RST instead of FIN
  server.close();
  EXPECT_TRUE(throws_code<ConnectionError>([&] { client.recv(10); }, std::errc::connection_reset));
}

TEST(SocketIoTest, HalfCloseLetsServerReplyAfterReadingToEof) {
  auto [client, server] = test::tcp_pair();
  client.settimeout(10s);
  server.settimeout(10s);
  client.sendall("GET /half-close");
  client.shutdown(SHUT_WR);  // "This client is done sending, but can still receive."
  EXPECT_EQ(recv_to_eof(server), "GET /half-close");
  server.sendall("200 OK");
  server.close();
  EXPECT_EQ(recv_to_eof(client), "200 OK");
}

TEST(SocketIoTest, GracefulCloseDeliversEverythingDespiteUnreadInput) {
  // The server never reads the client's request. A plain close() with unread input sends RST,
  // which can destroy the reply in flight; graceful_close() drains the input instead.
  auto [client, server] = test::tcp_pair();
  client.settimeout(30s);
  const std::string reply = pattern(1 << 20);
  client.sendall(std::string(100000, 'q'));
  bool peer_closed = false;
  std::thread closer([&] {
    server.sendall(reply);
    peer_closed = server.graceful_close(30s);
  });
  EXPECT_TRUE(recv_to_eof(client) == reply);  // throws ConnectionError on a reset
  client.close();
  closer.join();
  EXPECT_TRUE(peer_closed);
  EXPECT_EQ(server.fileno(), -1);
}

TEST(SocketIoTest, GracefulCloseReturnsFalseWhenPeerStaysOpen) {
  auto [client, server] = test::tcp_pair();
  const auto start = Clock::now();
  EXPECT_FALSE(server.graceful_close(50ms));
  EXPECT_GE(Clock::now() - start, 45ms);
  EXPECT_EQ(server.fileno(), -1);
  client.settimeout(10s);
  EXPECT_EQ(client.recv(10), "");  // it still ended with FIN, not RST
  EXPECT_FALSE(Socket().graceful_close(1ms));
}

TEST(SocketIoTest, GracefulCloseAfterBothSidesFinishedReportsThePeerClosed) {
  // We sent our FIN first and read the peer's: the kernel has moved the connection to
  // TIME_WAIT, where shutdown() fails with ENOTCONN. The peer did close, and that is the answer.
  auto [client, server] = test::tcp_pair();
  server.settimeout(10s);
  client.settimeout(10s);
  server.shutdown(SHUT_WR);
  EXPECT_EQ(client.recv(10), "");
  client.close();
  EXPECT_EQ(server.recv(10), "");
  EXPECT_TRUE(server.graceful_close(50ms));
  EXPECT_EQ(server.fileno(), -1);
}

// ---- Timeouts ----------------------------------------------------------------------------------

TEST(SocketIoTest, RecvThrowsTimeoutErrorOnSilentPeer) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(50ms);
  ASSERT_EQ(server.gettimeout(), Timeout(50ms));
  EXPECT_TRUE(server.getblocking());
  const auto start = Clock::now();
  try {
    (void)server.recv(10);
    FAIL() << "recv did not time out";
  } catch (const TimeoutError& e) {
    EXPECT_EQ(e.code(), std::errc::timed_out);
    EXPECT_NE(std::string(e.what()).find("recv 127.0.0.1:"), std::string::npos) << e.what();
  }
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 45ms);
  EXPECT_LT(elapsed, 10s);
  // The socket is still usable after a timeout.
  client.sendall("late");
  server.settimeout(10s);
  EXPECT_EQ(server.recv(10), "late");
}

TEST(SocketIoTest, RecvExactCountsTheWholeCallAgainstOneTimeout) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(50ms);
  client.sendall("x");
  EXPECT_TRUE(throws_code<TimeoutError>([&] { server.recv_exact(2); }, std::errc::timed_out));
}

TEST(SocketIoTest, SendallThrowsTimeoutErrorWhenPeerNeverReads) {
  auto [client, server] = test::tcp_pair();
  client.set_send_buffer_size(4096);
  server.set_recv_buffer_size(4096);
  client.settimeout(50ms);
  const std::string big(16 << 20, 'y');
  EXPECT_TRUE(throws_code<TimeoutError>([&] { client.sendall(big); }, std::errc::timed_out));
}

TEST(SocketIoTest, AcceptThrowsTimeoutErrorWhenNobodyConnects) {
  Socket listener = create_server(test::loopback4());
  listener.settimeout(50ms);
  EXPECT_TRUE(throws_code<TimeoutError>([&] { listener.accept(); }, std::errc::timed_out));
}

// ---- Deadlines ---------------------------------------------------------------------------------

TEST(SocketIoTest, DeadlineEndsBlockingCallWithoutTimeout) {
  auto [client, server] = test::tcp_pair();
  const auto until = Clock::now() + 50ms;
  server.set_deadline(until);
  EXPECT_EQ(server.get_deadline(), until);
  EXPECT_EQ(server.gettimeout(), Timeout());  // still "blocking": the deadline alone ends it
  EXPECT_TRUE(throws_code<TimeoutError>([&] { server.recv(10); }, std::errc::timed_out));
  EXPECT_GE(Clock::now(), until);
}

TEST(SocketIoTest, DeadlineIsAbsoluteAcrossCalls) {
  auto [client, server] = test::tcp_pair();
  server.set_deadline(Clock::now() - 1s);  // already passed
  client.sendall("ready");
  ASSERT_TRUE(test::wait_readable(server.fileno(), 10s));
  EXPECT_EQ(server.recv(10), "ready");  // a call that need not wait still succeeds
  const auto start = Clock::now();
  EXPECT_TRUE(throws_code<TimeoutError>([&] { server.recv(10); }, std::errc::timed_out));
  EXPECT_LT(Clock::now() - start, 5s);  // it did not wait at all (bounded for slow machines)
}

TEST(SocketIoTest, EarlierOfTimeoutAndDeadlineWins) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(30s);
  server.set_deadline(Clock::now() + 50ms);
  const auto start = Clock::now();
  EXPECT_TRUE(throws_code<TimeoutError>([&] { server.recv(10); }, std::errc::timed_out));
  EXPECT_LT(Clock::now() - start, 10s);
  server.set_deadline(std::nullopt);
  server.settimeout(50ms);
  EXPECT_TRUE(throws_code<TimeoutError>([&] { server.recv(10); }, std::errc::timed_out));
}

TEST(SocketIoTest, ClearingDeadlineRemovesTheKernelTimer) {
  auto [client, server] = test::tcp_pair();
  const auto nonblocking = [&] { return (::fcntl(server.fileno(), F_GETFL) & O_NONBLOCK) != 0; };
  EXPECT_FALSE(nonblocking());
  server.set_deadline(Clock::now() + 10s);
  EXPECT_FALSE(nonblocking());  // the kernel waits, under SO_RCVTIMEO for the time left
  client.sendall("x");
  EXPECT_EQ(server.recv(1), "x");
  const auto timer = kernel_timer(server, SO_RCVTIMEO);
  EXPECT_GT(timer, 9s);
  EXPECT_LE(timer, 10s);
  server.set_deadline(std::nullopt);
  EXPECT_FALSE(nonblocking());
  EXPECT_EQ(kernel_timer(server, SO_RCVTIMEO), 0s);  // a bare recv() must never time out
  EXPECT_FALSE(server.get_deadline());
  Socket moved(std::move(server));
  moved.set_deadline(Clock::now() + 10s);
  Socket again(std::move(moved));
  EXPECT_TRUE(again.get_deadline().has_value());  // a move keeps the deadline
}

// ---- Kernel timers (docs/adr/0004-kernel-timers.md) ---------------------------------------------

TEST(SocketIoTest, ATimedSocketStaysBlockingAndSetsItsTimerOnce) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(30s);
  EXPECT_EQ(::fcntl(server.fileno(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(kernel_timer(server, SO_RCVTIMEO), 0s);  // set by the first call that needs it
  client.sendall("ab");
  EXPECT_EQ(server.recv_exact(2), "ab");
  EXPECT_EQ(kernel_timer(server, SO_RCVTIMEO), 30s);
  EXPECT_EQ(kernel_timer(server, SO_SNDTIMEO), 0s);  // each direction on its own
  server.sendall("cd");
  EXPECT_EQ(kernel_timer(server, SO_SNDTIMEO), 30s);
  server.settimeout(std::nullopt);  // bare calls from here on: no timer may stay behind
  EXPECT_EQ(kernel_timer(server, SO_RCVTIMEO), 0s);
  EXPECT_EQ(kernel_timer(server, SO_SNDTIMEO), 0s);
}

// An idle wait on a socket with no timeout of its own (the servers' idle_timeout with
// --timeout 0) runs under a kernel timer that stays for the next idle wait: one recv(2) per wait.
TEST(SocketIoTest, AnIdleWaitOnABareSocketKeepsItsKernelTimer) {
  auto [client, server] = test::tcp_pair();
  char buf[8];
  client.sendall("a");
  EXPECT_EQ(server.recv_into_idle(buf, 30s), 1U);
  EXPECT_EQ(kernel_timer(server, SO_RCVTIMEO), 30s);
  EXPECT_EQ(::fcntl(server.fileno(), F_GETFL) & O_NONBLOCK, 0);
  client.sendall("b");
  EXPECT_EQ(server.recv_into_idle(buf, 30s), 1U);
  EXPECT_EQ(kernel_timer(server, SO_RCVTIMEO), 30s);
  // Nothing comes: the idle wait ends as a timeout, not as EAGAIN.
  EXPECT_TRUE(
      throws_code<TimeoutError>([&] { server.recv_into_idle(buf, 50ms); }, std::errc::timed_out));
}

// The timer an idle wait left must not bound a later bare call, which waits without limit:
// the call that meets it removes it and waits on.
TEST(SocketIoTest, ABareRecvOutlivesTheTimerAnIdleWaitLeft) {
  auto [client, server] = test::tcp_pair();
  char buf[8];
  client.sendall("a");
  EXPECT_EQ(server.recv_into_idle(buf, 20ms), 1U);
  EXPECT_GT(kernel_timer(server, SO_RCVTIMEO), 0s);
  // Sends `data` 200 ms from now: ten times the timer left on the socket.
  const auto send_late = [&client](std::string data) {
    return std::thread([&client, data = std::move(data)] {
      std::this_thread::sleep_for(200ms);
      client.sendall(data);
    });
  };
  std::thread late = send_late("bc");
  EXPECT_EQ(server.recv(8), "bc");
  late.join();
  EXPECT_EQ(kernel_timer(server, SO_RCVTIMEO), 0s);
  // recv_exact takes the same road.
  client.sendall("d");
  EXPECT_EQ(server.recv_into_idle(buf, 20ms), 1U);
  std::thread later = send_late("efg");
  EXPECT_EQ(server.recv_exact(3), "efg");
  later.join();
  // MSG_DONTWAIT is the caller's own EAGAIN: reported, the timer kept.
  client.sendall("h");
  EXPECT_EQ(server.recv_into_idle(buf, 20ms), 1U);
  EXPECT_TRUE(throws_code<SocketError>([&] { server.recv(8, MSG_DONTWAIT); },
                                       std::errc::resource_unavailable_try_again));
  EXPECT_GT(kernel_timer(server, SO_RCVTIMEO), 0s);
}

TEST(SocketIoTest, AnAcceptedSocketDoesNotInheritTheListenersTimer) {
  Socket listener(AF_INET, SOCK_STREAM);
  listener.bind(test::loopback4());
  listener.listen(4);
  listener.settimeout(5s);
  auto client = test::connect_to(listener.getsockname());
  auto [conn, peer] = listener.accept();
  EXPECT_EQ(kernel_timer(listener, SO_RCVTIMEO), 5s);  // accept() waited under it
  EXPECT_FALSE(conn.gettimeout());
  EXPECT_EQ(kernel_timer(conn, SO_RCVTIMEO), 0s);  // the kernel copied it; accept() removed it
  EXPECT_EQ(kernel_timer(conn, SO_SNDTIMEO), 0s);
}

TEST(SocketIoTest, ATimerShortenedByAWholeCallDeadlineIsLengthenedAfterAnEarlyWake) {
  // recv_exact's third recv starts 0.6 s into its one 2 s deadline and gets the 1.4 s left as
  // its timer. A later recv with the full 2 s must not give up when that shorter timer runs
  // out: it wakes early, sets the time it has left, and goes on waiting.
  auto [client, server] = test::tcp_pair();
  server.settimeout(2s);
  std::thread writer([&client = client] {
    client.sendall("a");
    std::this_thread::sleep_for(600ms);
    client.sendall("b");
    std::this_thread::sleep_for(100ms);
    client.sendall("c");
    std::this_thread::sleep_for(1700ms);  // longer than the short timer, within the timeout
    client.sendall("d");
  });
  EXPECT_EQ(server.recv_exact(3), "abc");
  EXPECT_LT(kernel_timer(server, SO_RCVTIMEO), 1500ms);  // shortened for the third recv
  EXPECT_EQ(server.recv(1), "d");
  writer.join();
}

TEST(SocketIoTest, MsgDontwaitOnATimedSocketDoesNotWait) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(30s);
  std::error_code ec;
  char buf[4];
  EXPECT_EQ(server.recv_into(buf, ec, MSG_DONTWAIT), 0u);
  EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
}

TEST(SocketIoTest, ATimedConnectLeavesTheDescriptorBlocking) {
  Socket listener(AF_INET, SOCK_STREAM);
  listener.bind(test::loopback4());
  listener.listen(4);
  Socket client(AF_INET, SOCK_STREAM);
  client.settimeout(5s);
  client.connect(listener.getsockname());
  EXPECT_EQ(::fcntl(client.fileno(), F_GETFL) & O_NONBLOCK, 0);
  client.sendall("x");
  auto [conn, peer] = listener.accept();
  EXPECT_EQ(conn.recv(1), "x");
}

// ---- Non-blocking mode -------------------------------------------------------------------------

TEST(SocketIoTest, NonBlockingRecvThrowsEagainNotTimeout) {
  auto [client, server] = test::tcp_pair();
  server.setblocking(false);
  EXPECT_FALSE(server.getblocking());
  EXPECT_EQ(server.gettimeout(), Timeout(0ns));
  try {
    (void)server.recv(10);
    FAIL() << "recv did not throw";
  } catch (const TimeoutError& e) {
    FAIL() << "EAGAIN must not be a timeout: " << e.what();
  } catch (const SocketError& e) {
    EXPECT_EQ(e.code(), std::errc::resource_unavailable_try_again) << e.what();
  }
  // The error_code overload reports the same without throwing.
  char buffer[4];
  std::error_code ec;
  EXPECT_EQ(server.recv_into(buffer, ec), 0u);
  EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
  client.sendall("ok");
  ASSERT_TRUE(test::wait_readable(server.fileno(), 10s));
  EXPECT_EQ(server.recv_into(buffer, ec), 2u);
  EXPECT_FALSE(ec);
  server.setblocking(true);
  EXPECT_EQ(server.gettimeout(), Timeout());
}

TEST(SocketIoTest, NonBlockingAcceptAndConnectReportInsteadOfWaiting) {
  Socket listener = create_server(test::loopback4());
  listener.setblocking(false);
  std::error_code ec;
  auto [nobody, nowhere] = listener.accept(ec);
  EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
  EXPECT_FALSE(nobody);

  Socket client(AF_INET, SOCK_STREAM);
  client.setblocking(false);
  const int rc = client.connect_ex(listener.getsockname());
  EXPECT_TRUE(rc == 0 || rc == EINPROGRESS) << rc;
  ASSERT_TRUE(test::wait_readable(listener.fileno(), 10s));
  auto [conn, peer] = listener.accept(ec);
  EXPECT_FALSE(ec);
  EXPECT_TRUE(conn);
  EXPECT_EQ(peer.port(), client.getsockname().port());
}

}  // namespace
}  // namespace sockserv
