// SPDX-License-Identifier: MIT
// Errors on the event-loop servers (CPython's ErrorHandlerTest, and the peers that misbehave): a
// handler's exception reaches handle_error() once with the client's address and the server goes
// on; verify_request() refusing closes the connection; a peer that vanishes while its handler
// sleeps gets the task cancelled, while a peer that only half-closes still gets its reply; an
// oversized datagram is dropped and reported; the default handle_error() writes to stderr.
#include <sockserv/aio/server.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/timeout.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include "support/aio_serving.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

using test::eventually;
using test::Serving;

Socket connect_to(const Address& address) { return test::connect_to(address, 5s); }

// Sends fd 2 to a file while alive; text() returns what was written so far.
class CapturedStderr {
 public:
  CapturedStderr() : path_(dir_.path("stderr.txt")) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~CapturedStderr() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
  }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;
  std::string text() const {
    std::ifstream in(path_);
    std::stringstream all;
    all << in.rdbuf();
    return all.str();
  }

 private:
  test::TempDir dir_;
  std::string path_;
  int saved_ = -1;
};

// ---- handle_error ----------------------------------------------------------------------------

struct Reported {
  std::string client;
  std::string what;
};

// Records handle_error() calls (from any loop thread).
template <class Base>
class RecordingServer : public Base {
 public:
  using Base::Base;
  void handle_error(const Address& client_address, std::exception_ptr error) override {
    std::string what = "(not a std::exception)";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    std::lock_guard lock(mutex_);
    reports_.push_back({client_address.to_string(), what});
  }
  std::vector<Reported> reports() {
    std::lock_guard lock(mutex_);
    return reports_;
  }

 private:
  std::mutex mutex_;
  std::vector<Reported> reports_;
};

Task<void> echo_or_fail(Connection conn) {
  for (std::string line; !(line = co_await conn.readline()).empty();) {
    if (line == "fail\n") throw std::runtime_error("handler failed on purpose");
    co_await conn.sendall(line);
  }
}

TEST(AsyncServerErrorTest, HandlerExceptionGoesToHandleErrorOnceAndTheServerGoesOn) {
  RecordingServer<AsyncTCPServer> server(test::loopback4(), echo_or_fail);
  server.threads = 2;
  Serving serving(server);
  auto bad = connect_to(server.server_address);
  bad.sendall("fail\n");
  EXPECT_EQ(bad.recv(10), "");  // the failed handler's connection was closed
  ASSERT_TRUE(eventually([&] { return !server.reports().empty(); }));
  for (int i = 0; i < 3; ++i) {  // later clients are served as before
    auto good = connect_to(server.server_address);
    good.sendall("still here\n");
    EXPECT_EQ(good.recv_exact(11), "still here\n");
  }
  const auto reports = server.reports();
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_EQ(reports[0].client, bad.getsockname().to_string());
  EXPECT_EQ(reports[0].what, "handler failed on purpose");
}

TEST(AsyncServerErrorTest, DatagramHandlerExceptionGoesToHandleErrorWithTheSender) {
  RecordingServer<AsyncUDPServer> server(test::loopback4(), [](Datagram d) -> Task<void> {
    if (d.data == "fail") throw std::runtime_error("datagram handler failed");
    d.reply(d.data);
    co_return;
  });
  server.threads = 1;
  Serving serving(server);
  Socket client(AF_INET, SOCK_DGRAM);
  client.settimeout(5s);
  client.bind(test::loopback4());
  client.sendto("fail", server.server_address);
  client.sendto("ok", server.server_address);
  EXPECT_EQ(client.recvfrom(10).first, "ok");
  ASSERT_TRUE(eventually([&] { return !server.reports().empty(); }));
  const auto reports = server.reports();
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_EQ(reports[0].client, client.getsockname().to_string());
}

TEST(AsyncServerErrorTest, DefaultHandleErrorWritesTheClientAddressToStderr) {
  CapturedStderr captured;
  std::string client_address;
  {
    AsyncTCPServer server(test::loopback4(), echo_or_fail);
    server.threads = 1;
    Serving serving(server);
    auto bad = connect_to(server.server_address);
    client_address = bad.getsockname().to_string();
    bad.sendall("fail\n");
    EXPECT_EQ(bad.recv(10), "");
    // The report is written before the connection closes: it is in the file by now.
  }
  const std::string text = captured.text();
  EXPECT_NE(text.find(client_address), std::string::npos) << text;
  EXPECT_NE(text.find("handler failed on purpose"), std::string::npos) << text;
}

// listener_per_loop needs SO_REUSEPORT on the server's socket; an adopted one without it cannot
// be joined, and the loops share it instead, with a warning - serving goes on.
TEST(AsyncServerErrorTest, ListenerPerLoopThatCannotJoinTheSocketSharesItAndSaysSo) {
  CapturedStderr captured;
  {
    Socket bound(AF_INET, SOCK_STREAM);  // no SO_REUSEPORT: no other socket may join its port
    bound.bind(test::loopback4());
    bound.listen(16);
    AsyncTCPServer server(test::loopback4(), echo_or_fail, false);
    server.threads = 2;
    server.listener_per_loop = true;
    server.adopt_socket(std::move(bound));
    Serving serving(server);
    for (int i = 0; i < 4; ++i) {
      auto client = connect_to(server.server_address);
      client.sendall("hi\n");
      EXPECT_EQ(client.recv_exact(3), "hi\n");
    }
  }
  const std::string text = captured.text();
  EXPECT_NE(text.find("share the server's socket"), std::string::npos) << text;
}

// ---- verify_request ----------------------------------------------------------------------------

class RefusingServer : public AsyncTCPServer {
 public:
  using AsyncTCPServer::AsyncTCPServer;
  bool verify_request(const Address& client_address) override {
    ++asked;
    return client_address.port() % 2 == 0 ? accept_even : !accept_even;
  }
  std::atomic<int> asked{0};
  bool accept_even = false;  // refuse clients on even ports, serve clients on odd ones
};

TEST(AsyncServerErrorTest, VerifyRequestRefusingClosesTheConnectionWithoutAHandler) {
  std::atomic<int> handled{0};
  RefusingServer server(test::loopback4(), [&handled](Connection conn) -> Task<void> {
    ++handled;
    co_await conn.sendall(co_await conn.readline());
  });
  server.threads = 2;
  Serving serving(server);
  int refused = 0;
  int served = 0;
  for (int i = 0; i < 6; ++i) {
    auto sock = connect_to(server.server_address);
    const bool even = sock.getsockname().port() % 2 == 0;
    try {
      sock.sendall("hello\n");
      const std::string got = sock.recv(10);
      if (even) {
        EXPECT_EQ(got, "");
      } else {
        EXPECT_EQ(got, "hello\n");
      }
    } catch (const ConnectionError&) {
      EXPECT_TRUE(even) << "a served client's connection was reset";
    }
    (even ? refused : served) += 1;
  }
  EXPECT_EQ(server.asked.load(), 6);
  EXPECT_EQ(handled.load(), served);
  RecordProperty("refused", refused);
}

// ---- Peers that go away ----------------------------------------------------------------------

TEST(AsyncServerErrorTest, PeerVanishingWhileTheHandlerSleepsCancelsItsTask) {
  std::atomic<bool> sleeping{false};
  std::atomic<bool> cancelled{false};
  AsyncTCPServer server(test::loopback4(), [&](Connection conn) -> Task<void> {
    (void)co_await conn.readline();
    sleeping = true;
    try {
      co_await sleep(1h);  // not waiting on the socket: only a hang-up report can end this
    } catch (const std::system_error& e) {
      cancelled = e.code() == std::errc::operation_canceled;
      throw;
    }
  });
  server.threads = 2;
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  sock.sendall("then I vanish\n");
  ASSERT_TRUE(eventually([&] { return sleeping.load(); }));
  sock.set_linger(std::chrono::seconds(0));
  sock.close();  // a reset: the peer is gone for good
  EXPECT_TRUE(eventually([&] { return cancelled.load(); }));
  EXPECT_TRUE(eventually([&] { return server.active_tasks() == 0; }));
}

TEST(AsyncServerErrorTest, ConnectionOutlivingItsHandlerSurvivesThePeerVanishing) {
  // The handler hands its connection to a detached task (as the chat example's writer shares
  // its member's connection) and ends. When the peer then resets, the finished handler's task
  // state is gone: the hang-up must not touch it.
  std::atomic<bool> handed_over{false};
  std::atomic<bool> keeper_done{false};
  AsyncTCPServer server(test::loopback4(), [&](Connection conn) -> Task<void> {
    auto keeper = [](Connection c, std::atomic<bool>& done) -> Task<void> {
      co_await sleep(200ms);  // not waiting on the socket when the reset arrives
      c.close();
      done = true;
    };
    EventLoop::current()->spawn(keeper(std::move(conn), keeper_done));
    handed_over = true;
    co_return;
  });
  server.threads = 1;
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  ASSERT_TRUE(eventually([&] { return handed_over.load() && server.active_tasks() == 0; }));
  sock.set_linger(std::chrono::seconds(0));
  sock.close();
  EXPECT_TRUE(eventually([&] { return keeper_done.load(); }));
}

TEST(AsyncServerErrorTest, PeerThatOnlyHalfClosesStillGetsItsReply) {
  AsyncTCPServer server(test::loopback4(), [](Connection conn) -> Task<void> {
    const std::string request = co_await conn.readline();
    co_await sleep(20ms);  // the peer's FIN arrives meanwhile: that is no reason to cancel
    co_await conn.sendall("re: " + request);
  });
  server.threads = 1;
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  sock.sendall("question\n");
  sock.shutdown(SHUT_WR);
  EXPECT_EQ(sock.recv_exact(13), "re: question\n");
  EXPECT_EQ(sock.recv(10), "");
}

TEST(AsyncServerErrorTest, ConnectionTimeoutClosesAnIdleConnection) {
  AsyncTCPServer server(test::loopback4(),
                        [](Connection conn) -> Task<void> { (void)co_await conn.readline(); });
  server.threads = 1;
  server.connection_timeout = 50ms;
  server.idle_timeout = 50ms;  // an idle connection is idle_timeout's since ADR 0006
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  const auto start = SteadyClock::now();
  EXPECT_EQ(sock.recv(10), "");  // the server gave up on the silent client
  EXPECT_GE(SteadyClock::now() - start, 40ms);
  EXPECT_TRUE(eventually([&] { return server.active_tasks() == 0; }));
}

// ---- Datagrams -------------------------------------------------------------------------------

TEST(AsyncServerErrorTest, DatagramBiggerThanMaxPacketSizeIsDroppedAndReported) {
  CapturedStderr captured;
  std::atomic<int> handled{0};
  {
    AsyncUDPServer server(test::loopback4(), [&handled](Datagram d) -> Task<void> {
      ++handled;
      d.reply("got " + std::to_string(d.data.size()));
      co_return;
    });
    server.threads = 1;
    server.max_packet_size = 100;
    Serving serving(server);
    Socket client(AF_INET, SOCK_DGRAM);
    client.settimeout(5s);
    client.sendto(std::string(250, 'x'), server.server_address);
    client.sendto(std::string(100, 'y'), server.server_address);  // exactly the limit: served
    EXPECT_EQ(client.recvfrom(100).first, "got 100");
  }
  EXPECT_EQ(handled.load(), 1);
  const std::string text = captured.text();
  EXPECT_NE(text.find("250"), std::string::npos) << "the drop was not reported: " << text;
}

}  // namespace
}  // namespace sockserv::aio
