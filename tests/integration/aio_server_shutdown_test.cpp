// SPDX-License-Identifier: MIT
// Shutting the event-loop servers down: while handlers are in the middle of a read (every
// connection closed, every task finished, no descriptor leaked), from inside a handler, many
// times right after serve_forever() starts, before it starts, with and without shutdown_grace,
// and serving again afterwards. Each with one and with three event loops.
#include <sockserv/aio/server.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/timeout.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include "support/aio_serving.hpp"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <exception>
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

// Counts handlers that started and handlers whose frame was destroyed (however they ended).
struct Census {
  std::atomic<int> started{0};
  std::atomic<int> ended{0};
  struct Guard {
    Census* census;
    ~Guard() { ++census->ended; }
  };
};

ConnectionHandler read_until_eof(Census& census) {
  return [&census](Connection conn) -> Task<void> {
    Census::Guard guard{&census};
    ++census.started;
    // Not `while (!(co_await conn.readline()).empty())`: GCC 12.2 miscompiles a coroutine whose
    // if/while condition co_awaits into a temporary when no local with a destructor precedes it
    // (the body never runs). Assigning to a variable in the condition is safe.
    for (std::string line; !(line = co_await conn.readline()).empty();) {
    }
  };
}

class ShutdownTest : public testing::TestWithParam<std::size_t> {};

TEST_P(ShutdownTest, ShutdownWhileHandlersAreMidReadClosesEveryConnection) {
  constexpr int clients = 20;
  const auto fds_before = test::count_open_fds();
  Census census;
  {
    AsyncTCPServer server(test::loopback4(), read_until_eof(census));
    server.threads = GetParam();
    Serving serving(server);
    std::vector<Socket> socks;
    for (int i = 0; i < clients; ++i) socks.push_back(connect_to(server.server_address));
    for (auto& s : socks) s.sendall("a partial line without its end");
    ASSERT_TRUE(eventually([&] { return server.active_tasks() == clients; }));
    serving.stop();
    EXPECT_EQ(census.started.load(), clients);
    EXPECT_EQ(census.ended.load(), clients);
    EXPECT_EQ(server.active_tasks(), 0U);
    for (auto& s : socks) EXPECT_EQ(s.recv(10), "");  // each client sees EOF
    server.server_close();
  }
  EXPECT_EQ(test::count_open_fds(), fds_before);
}

TEST_P(ShutdownTest, ShutdownFromInsideAHandlerDoesNotDeadlock) {
  AsyncTCPServer* self = nullptr;
  AsyncTCPServer server(test::loopback4(), [&self](Connection conn) -> Task<void> {
    if (co_await conn.readline() == "shutdown\n") {
      self->shutdown();  // returns at once on a loop thread
      co_await conn.sendall("bye\n");
    }
  });
  self = &server;
  server.threads = GetParam();
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  sock.sendall("shutdown\n");
  EXPECT_TRUE(eventually([&] { return serving.returned(); }))
      << "serve_forever() did not return after a handler called shutdown()";
  serving.stop();
  EXPECT_EQ(server.active_tasks(), 0U);
}

TEST_P(ShutdownTest, ShutdownRightAfterServeForeverStartsTwentyTimes) {
  Census census;
  AsyncTCPServer server(test::loopback4(), read_until_eof(census));
  server.threads = GetParam();
  for (int i = 0; i < 20; ++i) {
    Serving serving(server);
    serving.stop();
    EXPECT_TRUE(serving.returned());
  }
  // Still a working server afterwards.
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  sock.sendall("line\n");
  EXPECT_TRUE(eventually([&] { return census.started.load() == 1; }));
  serving.stop();
  EXPECT_EQ(census.ended.load(), 1);
}

TEST_P(ShutdownTest, ServeForeverCanRunAgainAfterShutdown) {
  AsyncTCPServer server(test::loopback4(), [](Connection conn) -> Task<void> {
    co_await conn.sendall(co_await conn.readline());
  });
  server.threads = GetParam();
  for (int round = 0; round < 2; ++round) {
    Serving serving(server);
    auto sock = connect_to(server.server_address);
    sock.sendall("round\n");
    EXPECT_EQ(sock.recv_exact(6), "round\n");
    serving.stop();
  }
}

INSTANTIATE_TEST_SUITE_P(Loops, ShutdownTest, testing::Values(1U, 3U),
                         [](const testing::TestParamInfo<std::size_t>& param) {
                           return "threads" + std::to_string(param.param);
                         });

TEST(ShutdownBehaviourTest, ShutdownBeforeServeForeverReturnsAndServeForeverThenEndsAtOnce) {
  AsyncTCPServer server(test::loopback4(), [](Connection) -> Task<void> { co_return; });
  server.threads = 2;
  server.shutdown();  // nothing serves: returns at once, and is remembered
  const auto start = SteadyClock::now();
  server.serve_forever();
  EXPECT_LT(SteadyClock::now() - start, 5s);
  // Consumed: the next serve_forever() serves until its own shutdown().
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  serving.stop();
}

// A handler that reads a line, sleeps 100 ms, then answers: shutdown_grace decides whether it
// may finish.
struct SlowReply {
  std::atomic<bool> sleeping{false};
  ConnectionHandler handler() {
    return [this](Connection conn) -> Task<void> {
      const std::string line = co_await conn.readline();
      sleeping = true;
      co_await sleep(100ms);
      co_await conn.sendall("reply to " + line);
    };
  }
};

TEST(ShutdownBehaviourTest, ShutdownGraceLetsAnInFlightHandlerFinish) {
  SlowReply slow;
  AsyncTCPServer server(test::loopback4(), slow.handler());
  server.threads = 2;
  server.shutdown_grace = 2s;
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  sock.sendall("question\n");
  ASSERT_TRUE(eventually([&] { return slow.sleeping.load(); }));
  const auto start = SteadyClock::now();
  serving.stop();
  EXPECT_LT(SteadyClock::now() - start, 2s) << "shutdown waited for the whole grace period";
  EXPECT_EQ(sock.recv_exact(18), "reply to question\n");
  EXPECT_EQ(sock.recv(10), "");
}

TEST(ShutdownBehaviourTest, ZeroShutdownGraceCancelsAnInFlightHandler) {
  SlowReply slow;
  AsyncTCPServer server(test::loopback4(), slow.handler());
  server.threads = 2;
  server.shutdown_grace = 0s;
  Serving serving(server);
  auto sock = connect_to(server.server_address);
  sock.sendall("question\n");
  ASSERT_TRUE(eventually([&] { return slow.sleeping.load(); }));
  serving.stop();
  EXPECT_EQ(sock.recv(100), "");  // cancelled in its sleep: EOF, no reply
  EXPECT_EQ(server.active_tasks(), 0U);
}

TEST(ShutdownBehaviourTest, ShutdownGraceWithNoConnectionsReturnsPromptly) {
  AsyncTCPServer server(test::loopback4(), [](Connection) -> Task<void> { co_return; });
  server.threads = 2;
  server.shutdown_grace = 10s;
  Serving serving(server);
  const auto start = SteadyClock::now();
  serving.stop();
  EXPECT_LT(SteadyClock::now() - start, 5s);
}

TEST(ShutdownBehaviourTest, DatagramServerShutdownCancelsRunningHandlers) {
  std::atomic<bool> sleeping{false};
  std::atomic<bool> cancelled{false};
  AsyncUDPServer server(test::loopback4(), [&](Datagram) -> Task<void> {
    sleeping = true;
    try {
      co_await sleep(1h);
    } catch (const std::system_error& e) {
      cancelled = e.code() == std::errc::operation_canceled;
      throw;
    }
  });
  server.threads = 2;
  Serving serving(server);
  Socket client(AF_INET, SOCK_DGRAM);
  client.sendto("wake up", server.server_address);
  ASSERT_TRUE(eventually([&] { return sleeping.load(); }));
  serving.stop();
  EXPECT_TRUE(cancelled.load());
  EXPECT_EQ(server.active_tasks(), 0U);
}

}  // namespace
}  // namespace sockserv::aio
