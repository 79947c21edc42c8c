// SPDX-License-Identifier: MIT
// Socket as an object: ownership (close-on-exec, move, detach, from_fd, no leaks), options, error
// messages and codes, EINTR retries and the absence of SIGPIPE. Data transfer is in
// socket_io_test.cpp; address families, datagrams and the factories in socket_families_test.cpp.
#include <sockserv/socket.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::throws_code;

bool is_cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// A bound socket nobody listens on: connecting to its address is refused, and as long as it
// lives no other socket can take the port.
struct RefusingPort {
  Socket holder{AF_INET, SOCK_STREAM};
  Address address;
  RefusingPort() {
    holder.bind(test::loopback4());
    address = holder.getsockname();
  }
};

// ---- Ownership ---------------------------------------------------------------------------------

TEST(SocketTest, EverySocketIsCloseOnExec) {
  Socket plain(AF_INET, SOCK_STREAM);
  EXPECT_TRUE(is_cloexec(plain.fileno()));
  auto [client, server] = test::tcp_pair();
  EXPECT_TRUE(is_cloexec(client.fileno()));
  EXPECT_TRUE(is_cloexec(server.fileno()));  // from accept()
  auto [a, b] = socketpair();
  EXPECT_TRUE(is_cloexec(a.fileno()));
  EXPECT_TRUE(is_cloexec(b.fileno()));
}

TEST(SocketTest, ConstructorThrowsForUnsupportedFamily) {
  EXPECT_TRUE(throws_code<SocketError>([] { Socket(12345, SOCK_STREAM); },
                                       std::errc::address_family_not_supported));
}

TEST(SocketTest, EmptySocketHasNoDescriptor) {
  Socket s;
  EXPECT_EQ(s.fileno(), -1);
  EXPECT_FALSE(s);
  s.close();
  s.close();
  EXPECT_EQ(s.family(), AF_UNSPEC);
}

TEST(SocketTest, MoveTransfersOwnershipAndAssignmentClosesTheOld) {
  Socket a(AF_INET, SOCK_DGRAM);
  const int fd = a.fileno();
  a.settimeout(2s);
  Socket b(std::move(a));
  EXPECT_EQ(a.fileno(), -1);  // NOLINT(bugprone-use-after-move): the moved-from state is defined
  EXPECT_EQ(b.fileno(), fd);
  EXPECT_EQ(b.family(), AF_INET);
  EXPECT_EQ(b.type(), SOCK_DGRAM);
  EXPECT_EQ(b.gettimeout(), Timeout(2s));

  Socket c(AF_INET, SOCK_STREAM);
  const int old = c.fileno();
  c = std::move(b);
  EXPECT_EQ(c.fileno(), fd);
  EXPECT_FALSE(is_open(old));
  EXPECT_TRUE(is_open(fd));
}

TEST(SocketTest, DetachGivesUpOwnership) {
  int fd = -1;
  {
    Socket s(AF_INET, SOCK_STREAM);
    fd = s.detach();
    EXPECT_EQ(s.fileno(), -1);
  }
  EXPECT_TRUE(is_open(fd));
  ::close(fd);
}

TEST(SocketTest, FromFdAdoptsDescriptorAndLearnsFamilyAndType) {
  Socket original(AF_INET6, SOCK_DGRAM);
  const int fd = original.detach();
  Socket adopted = Socket::from_fd(fd);
  EXPECT_EQ(adopted.fileno(), fd);
  EXPECT_EQ(adopted.family(), AF_INET6);
  EXPECT_EQ(adopted.type(), SOCK_DGRAM);
  adopted.close();
  EXPECT_FALSE(is_open(fd));
}

TEST(SocketTest, AdoptTakesCallersWordForFamilyTypeAndMode) {
  Socket original(AF_INET, SOCK_STREAM);
  const int fd = original.detach();
  Socket plain = Socket::adopt(fd, AF_INET, SOCK_STREAM);
  EXPECT_EQ(plain.fileno(), fd);
  EXPECT_EQ(plain.family(), AF_INET);
  EXPECT_EQ(plain.type(), SOCK_STREAM);
  EXPECT_EQ(plain.gettimeout(), Timeout());
  const int raw = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(raw, 0);
  Socket nonblocking = Socket::adopt(raw, AF_INET, SOCK_DGRAM, true);
  EXPECT_FALSE(nonblocking.getblocking());
  EXPECT_EQ(nonblocking.gettimeout(), Timeout(0ns));
}

// As Python's socket since 3.7: type() is the kind of socket without the descriptor flags, and
// SOCK_NONBLOCK in the constructor's type makes a non-blocking socket (timeout 0).
TEST(SocketTest, TypeFlagsAreAppliedAndLeftOutOfType) {
  Socket s(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
  EXPECT_EQ(s.type(), SOCK_STREAM);
  EXPECT_FALSE(s.getblocking());
  EXPECT_EQ(s.gettimeout(), Timeout(0ns));
  EXPECT_NE(::fcntl(s.fileno(), F_GETFL) & O_NONBLOCK, 0);
  Socket plain(AF_INET, SOCK_DGRAM);
  EXPECT_TRUE(plain.getblocking());
  EXPECT_EQ(plain.gettimeout(), Timeout());
}

// The latest deadline there is means no deadline: the socket stays a plain blocking one.
TEST(SocketTest, DeadlineAtTheEndOfTimeIsNoDeadline) {
  Socket s(AF_INET, SOCK_STREAM);
  s.set_deadline(std::chrono::steady_clock::time_point::max());
  EXPECT_FALSE(s.get_deadline());
  EXPECT_EQ(::fcntl(s.fileno(), F_GETFL) & O_NONBLOCK, 0);
  const auto soon = std::chrono::steady_clock::now() + 1h;
  s.set_deadline(soon);
  EXPECT_EQ(s.get_deadline(), soon);
  // The descriptor stays blocking: the kernel enforces the deadline (SO_RCVTIMEO/SO_SNDTIMEO).
  EXPECT_EQ(::fcntl(s.fileno(), F_GETFL) & O_NONBLOCK, 0);
  s.set_deadline(std::nullopt);
  EXPECT_FALSE(s.get_deadline());
  EXPECT_EQ(::fcntl(s.fileno(), F_GETFL) & O_NONBLOCK, 0);
}

TEST(SocketTest, FromFdThrowsNotASocketForPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  EXPECT_TRUE(throws_code<SocketError>([&] { Socket::from_fd(fds[0]); }, std::errc::not_a_socket));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(SocketTest, FailedConnectionsLeakNoDescriptors) {
  RefusingPort refusing;
  const std::size_t before = test::count_open_fds();
  for (int i = 0; i < 20; ++i) {
    EXPECT_THROW(create_connection(refusing.address), SocketError);
    EXPECT_THROW(create_connection("127.0.0.1", refusing.address.port()), SocketError);
  }
  EXPECT_EQ(test::count_open_fds(), before);
}

// ---- Options -----------------------------------------------------------------------------------

TEST(SocketTest, TcpOptionsReadBackAsSet) {
  auto [client, server] = test::tcp_pair();
  client.set_nodelay(true);
  EXPECT_TRUE(client.get_nodelay());
  client.set_nodelay(false);
  EXPECT_FALSE(client.get_nodelay());

  client.set_keepalive(KeepAlive{std::chrono::seconds(30), std::chrono::seconds(5), 3});
  EXPECT_EQ(client.getsockopt(SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(client.getsockopt(IPPROTO_TCP, TCP_KEEPIDLE), 30);
  EXPECT_EQ(client.getsockopt(IPPROTO_TCP, TCP_KEEPINTVL), 5);
  EXPECT_EQ(client.getsockopt(IPPROTO_TCP, TCP_KEEPCNT), 3);
  client.set_keepalive(false);
  EXPECT_EQ(client.getsockopt(SOL_SOCKET, SO_KEEPALIVE), 0);

  client.set_user_timeout(1500ms);
  EXPECT_EQ(client.getsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT), 1500);
}

TEST(SocketTest, SocketLevelOptionsReadBackAsSet) {
  Socket s(AF_INET6, SOCK_STREAM);
  s.set_reuse_address(true);
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_REUSEADDR), 1);
  s.set_reuse_port(true);
  EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_REUSEPORT), 1);
  s.set_ipv6_only(true);
  EXPECT_EQ(s.getsockopt(IPPROTO_IPV6, IPV6_V6ONLY), 1);
  s.set_ipv6_only(false);
  EXPECT_EQ(s.getsockopt(IPPROTO_IPV6, IPV6_V6ONLY), 0);

  s.set_send_buffer_size(65536);
  s.set_recv_buffer_size(65536);
  EXPECT_GE(s.get_send_buffer_size(), 65536);  // Linux doubles it for bookkeeping
  EXPECT_GE(s.get_recv_buffer_size(), 65536);

  ::linger value{};
  socklen_t len = sizeof value;
  s.set_linger(5s);
  ASSERT_EQ(::getsockopt(s.fileno(), SOL_SOCKET, SO_LINGER, &value, &len), 0);
  EXPECT_EQ(value.l_onoff, 1);
  EXPECT_EQ(value.l_linger, 5);
  s.set_linger(std::nullopt);
  ASSERT_EQ(::getsockopt(s.fileno(), SOL_SOCKET, SO_LINGER, &value, &len), 0);
  EXPECT_EQ(value.l_onoff, 0);
}

TEST(SocketTest, GetErrorReportsAndClearsPendingError) {
  RefusingPort refusing;
  Socket s(AF_INET, SOCK_STREAM);
  EXPECT_FALSE(s.get_error());
  s.setblocking(false);
  const int rc = s.connect_ex(refusing.address);
  if (rc == EINPROGRESS) {
    pollfd p{s.fileno(), POLLOUT, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1);
    EXPECT_EQ(s.get_error(), std::errc::connection_refused);
  } else {
    EXPECT_EQ(rc, ECONNREFUSED);
  }
  EXPECT_FALSE(s.get_error());  // reading SO_ERROR cleared it
}

TEST(SocketTest, SetsockoptFailureNamesTheOption) {
  Socket s(AF_INET, SOCK_STREAM);
  try {
    s.setsockopt(SOL_SOCKET, 99999, 1);
    FAIL() << "setsockopt did not throw";
  } catch (const SocketError& e) {
    EXPECT_EQ(e.code(), std::errc::no_protocol_option);
    EXPECT_NE(std::string(e.what()).find("setsockopt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s.settimeout(-1ms), std::invalid_argument);
}

// ---- Error messages and codes ------------------------------------------------------------------

TEST(SocketTest, ConnectErrorNamesOperationAndAddress) {
  RefusingPort refusing;
  Socket s(AF_INET, SOCK_STREAM);
  try {
    s.connect(refusing.address);
    FAIL() << "connect did not throw";
  } catch (const SocketError& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);
    const std::string expected = "connect 127.0.0.1:" + std::to_string(refusing.address.port());
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.connect_ex(refusing.address), ECONNREFUSED);
}

TEST(SocketTest, BindErrorNamesTheAddressInUse) {
  RefusingPort taken;
  Socket s(AF_INET, SOCK_STREAM);
  try {
    s.bind(taken.address);
    FAIL() << "bind did not throw";
  } catch (const SocketError& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    EXPECT_NE(std::string(e.what()).find("bind " + taken.address.to_string()), std::string::npos)
        << e.what();
  }
}

TEST(SocketTest, ListenReportsItsOwnErrno) {
  // listen() on a datagram socket fails with EOPNOTSUPP; building the message must not
  // overwrite errno before it is read.
  Socket udp(AF_INET, SOCK_DGRAM);
  udp.bind(test::loopback4());
  EXPECT_TRUE(throws_code<SocketError>([&] { udp.listen(); }, std::errc::operation_not_supported));
}

TEST(SocketTest, ShutdownReportsItsOwnErrno) {
  Socket unconnected(AF_INET, SOCK_STREAM);
  EXPECT_TRUE(
      throws_code<SocketError>([&] { unconnected.shutdown(42); }, std::errc::invalid_argument));
  EXPECT_TRUE(throws_code<ConnectionError>([&] { unconnected.shutdown(SHUT_RDWR); },
                                           std::errc::not_connected));
}

TEST(SocketTest, OperationsOnEmptySocketThrowBadDescriptor) {
  Socket empty;
  const auto bad = std::errc::bad_file_descriptor;
  EXPECT_TRUE(throws_code<SocketError>([&] { empty.listen(); }, bad));
  EXPECT_TRUE(throws_code<SocketError>([&] { empty.accept(); }, bad));
  EXPECT_TRUE(throws_code<SocketError>([&] { empty.send("x"); }, bad));
  EXPECT_TRUE(throws_code<SocketError>([&] { empty.recv(1); }, bad));
  EXPECT_TRUE(throws_code<SocketError>([&] { empty.getsockname(); }, bad));
}

// ---- EINTR ------------------------------------------------------------------------------------

std::atomic<int> signals_seen{0};
extern "C" void count_signal(int) { signals_seen.fetch_add(1); }

// Installs a SIGUSR1 handler WITHOUT SA_RESTART, so a blocked call fails with EINTR.
class InterruptingHandler {
 public:
  InterruptingHandler() {
    struct sigaction sa {};
    sa.sa_handler = count_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(SIGUSR1, &sa, &old_);
  }
  ~InterruptingHandler() { ::sigaction(SIGUSR1, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

// Runs `blocking_call` in a thread, interrupts it three times with SIGUSR1 while it sleeps, then
// runs `release` so that it can finish. Returns whether every signal was delivered.
bool interrupt_three_times(const std::function<void()>& blocking_call,
                           const std::function<void()>& release) {
  InterruptingHandler handler;
  std::atomic<pid_t> tid{0};
  std::thread worker([&] {
    tid = ::gettid();
    blocking_call();
  });
  const auto deadline = Clock::now() + 20s;
  bool delivered = true;
  for (int i = 0; i < 3 && delivered; ++i) {
    while (tid == 0 && Clock::now() < deadline) std::this_thread::yield();
    delivered = test::wait_until_blocked(tid, 20s);
    const int before = signals_seen;
    if (delivered) ::pthread_kill(worker.native_handle(), SIGUSR1);
    while (delivered && signals_seen == before && Clock::now() < deadline) {
      std::this_thread::yield();
    }
    delivered = delivered && signals_seen > before;
  }
  release();
  worker.join();
  return delivered;
}

TEST(SocketTest, BlockingRecvRetriesAfterEintr) {
  auto [client, server] = test::tcp_pair();
  std::string got;
  std::string error;
  const bool delivered = interrupt_three_times(
      [&] {
        try {
          got = server.recv(100);
        } catch (const std::exception& e) {
          error = e.what();
        }
      },
      [&] { client.sendall("after the signals"); });
  EXPECT_TRUE(delivered);
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "after the signals");
}

TEST(SocketTest, TimedRecvAndAcceptRetryAfterEintr) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(30s);  // the wait happens in poll(), which EINTR also interrupts
  std::string got, error;
  EXPECT_TRUE(interrupt_three_times(
      [&] {
        try {
          got = server.recv_exact(5);
        } catch (const std::exception& e) {
          error = e.what();
        }
      },
      [&] { client.sendall("12345"); }));
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, "12345");

  Socket listener = create_server(test::loopback4());
  Address peer;
  Socket caller;
  EXPECT_TRUE(interrupt_three_times(
      [&] {
        try {
          peer = listener.accept().second;
        } catch (const std::exception& e) {
          error = e.what();
        }
      },
      [&] { caller = create_connection(listener.getsockname()); }));
  EXPECT_EQ(error, "");
  EXPECT_EQ(peer, caller.getsockname());
}

// ---- SIGPIPE -----------------------------------------------------------------------------------

// In a child with SIGPIPE at its default disposition (terminate): the writes must throw
// ConnectionError and the child must survive to exit 0.
void write_to_dead_peers() {
  ::signal(SIGPIPE, SIG_DFL);
  int failures = 0;
  {
    auto [client, server] = test::tcp_pair();
    server.close();
    client.send("x");  // the closed peer answers with RST
    pollfd p{client.fileno(), POLLIN, 0};
    for (int i = 0; i < 100 && (p.revents & POLLHUP) == 0; ++i) ::poll(&p, 1, 100);
    try {
      client.sendall("y");
      ++failures;
    } catch (const ConnectionError& e) {
      if (e.code() != std::errc::broken_pipe && e.code() != std::errc::connection_reset) ++failures;
    }
  }
  {
    auto [client, server] = test::tcp_pair();
    client.shutdown(SHUT_WR);
    try {
      client.send("z");
      ++failures;
    } catch (const ConnectionError& e) {
      if (e.code() != std::errc::broken_pipe) ++failures;
    }
  }
  std::_Exit(failures == 0 ? 0 : 1);
}

TEST(SocketDeathTest, WritingToClosedPeerThrowsInsteadOfRaisingSigpipe) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(write_to_dead_peers(), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace sockserv
