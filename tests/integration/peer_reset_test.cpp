// SPDX-License-Identifier: MIT
// Issue 13 item 6, a peer that goes away is not an error: a client that resets mid-request
// (SO_LINGER 0, then close) or half-closes mid-message is one info line, counted in
// stats.peer_resets, and never reaches handle_error; a real handler exception still produces the
// ERROR banner and handle_error. Every mode whose handlers run in this process (sync,
// threading, pool, async; a forking server's handle_error runs in its child, out of the test's
// sight; its counters are checked by serve_stats_test and metrics_serve_test) and TLS.
#include <sockserv/aio/server.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/log.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;

enum class Mode { sync, threading, pool, async };

std::string name_of(Mode m) {
  constexpr const char* names[] = {"Sync", "Threading", "Pool", "Async"};
  return names[static_cast<int>(m)];
}

// Messages are 8 bytes; "boom!!!!" makes the handler fail for real.
std::string reply_to(const std::string& message) {
  if (message == "boom!!!!") throw std::runtime_error("handler failed on purpose");
  return "ok:" + message + "\n";
}

RequestHandlerFactory fixed_handler() {
  return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
    for (;;) self.wfile.write(reply_to(self.rfile.read_exact(8)));
  });
}

aio::Task<void> async_fixed(aio::Connection conn) {
  for (;;) {
    const std::string message = co_await conn.read_exact(8);
    co_await conn.sendall(reply_to(message));
  }
}

// A server whose handle_error counts its calls (then does what the library's does).
template <class Base>
class Counting : public Base {
 public:
  using Base::Base;
  std::atomic<int> handle_error_calls{0};
  void handle_error(Request& request, const Address& client, std::exception_ptr e) override {
    ++handle_error_calls;
    Base::handle_error(request, client, e);
  }
};

class CountingAsync : public aio::AsyncTCPServer {
 public:
  using AsyncTCPServer::AsyncTCPServer;
  std::atomic<int> handle_error_calls{0};
  void handle_error(const Address& client, std::exception_ptr e) override {
    ++handle_error_calls;
    AsyncTCPServer::handle_error(client, e);
  }
};

// Every log line, with its level.
class LogCapture {
 public:
  LogCapture() {
    set_log_sink([this](LogLevel level, std::string_view message) {
      const std::lock_guard lock(mutex_);
      lines_.emplace_back(level, std::string(message));
    });
  }
  ~LogCapture() { set_log_sink({}); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  // How many lines at `level` contain `part`.
  int count(LogLevel level, std::string_view part) const {
    const std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [l, text] : lines_) n += l == level && test::contains(text, part);
    return n;
  }
  int count_at_least(LogLevel level) const {
    const std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& line : lines_) n += line.first >= level;
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

class ModeServer {
 public:
  explicit ModeServer(Mode mode) {
    if (mode == Mode::async) {
      async_ = std::make_unique<CountingAsync>(test::loopback4(), async_fixed);
      thread_ = std::thread([this] { async_->serve_forever(); });
      return;
    }
    const auto address = test::loopback4();
    if (mode == Mode::threading) {
      sync_ = std::make_unique<Counting<ThreadingTCPServer>>(address, fixed_handler());
    } else if (mode == Mode::pool) {
      sync_ = std::make_unique<Counting<ThreadPoolTCPServer>>(address, fixed_handler());
    } else {
      sync_ = std::make_unique<Counting<TCPServer>>(address, fixed_handler());
    }
    thread_ = std::thread([this] { sync_->serve_forever(20ms); });
  }
  ~ModeServer() {
    if (async_) async_->shutdown();
    if (sync_) sync_->shutdown();
    thread_.join();
    if (sync_) sync_->server_close();
  }
  ModeServer(const ModeServer&) = delete;
  ModeServer& operator=(const ModeServer&) = delete;

  const Address& address() const { return async_ ? async_->server_address : sync_->server_address; }
  const ServerStats& stats() const { return async_ ? async_->stats : sync_->stats; }
  int handle_error_calls() const {
    if (async_) return async_->handle_error_calls.load();
    return dynamic_cast<Counting<TCPServer>*>(sync_.get())
               ? static_cast<Counting<TCPServer>*>(sync_.get())->handle_error_calls.load()
           : dynamic_cast<Counting<ThreadingTCPServer>*>(sync_.get())
               ? static_cast<Counting<ThreadingTCPServer>*>(sync_.get())->handle_error_calls.load()
               : static_cast<Counting<ThreadPoolTCPServer>*>(sync_.get())
                     ->handle_error_calls.load();
  }

 private:
  std::unique_ptr<TCPServer> sync_;
  std::unique_ptr<CountingAsync> async_;
  std::thread thread_;
};

// A client that has been served once (so the handler is running), then sent half a message.
Socket client_mid_request(const Address& address) {
  Socket sock = test::connect_to(address);
  sock.sendall("12345678");
  EXPECT_EQ(test::recv_line(sock), "ok:12345678\n");
  sock.sendall("abc");
  return sock;
}

class PeerResetTest : public testing::TestWithParam<Mode> {};

TEST_P(PeerResetTest, ResetMidRequestIsOneInfoLineAndCounted) {
  const LogCapture logs;
  ModeServer server(GetParam());
  {
    Socket sock = client_mid_request(server.address());
    const linger abort{1, 0};  // close() sends RST
    ASSERT_EQ(::setsockopt(sock.fileno(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort), 0);
  }
  ASSERT_TRUE(test::eventually([&] { return server.stats().peer_resets.load() == 1; }));
  EXPECT_TRUE(
      test::eventually([&] { return logs.count(LogLevel::info, "lost by the peer") == 1; }));
  // The reason is the reset's when a read saw it; when the reset came while the handler was
  // between reads, the loop cancelled the handler and the line says so instead.
  EXPECT_EQ(logs.count(LogLevel::info, "Connection reset by peer") +
                logs.count(LogLevel::info, "hung up while the handler was busy"),
            1);
  EXPECT_EQ(logs.count_at_least(LogLevel::warning), 0) << "a reset was reported as a failure";
  EXPECT_EQ(server.stats().handler_errors.load(), 0u);
  EXPECT_EQ(server.handle_error_calls(), 0);
  EXPECT_TRUE(test::contains(server.stats().snapshot().to_string(), "peer_resets=1"));
}

TEST_P(PeerResetTest, HalfCloseMidMessageIsOneInfoLineAndCounted) {
  const LogCapture logs;
  ModeServer server(GetParam());
  Socket sock = client_mid_request(server.address());
  sock.shutdown(SHUT_WR);  // the rest of the message never comes
  EXPECT_TRUE(test::ended_by_server(sock));
  ASSERT_TRUE(test::eventually([&] { return server.stats().peer_resets.load() == 1; }));
  EXPECT_TRUE(
      test::eventually([&] { return logs.count(LogLevel::info, "lost by the peer") == 1; }));
  EXPECT_EQ(logs.count_at_least(LogLevel::warning), 0);
  EXPECT_EQ(server.handle_error_calls(), 0);
}

TEST_P(PeerResetTest, RealHandlerExceptionStillGoesToHandleErrorWithTheBanner) {
  const LogCapture logs;
  ModeServer server(GetParam());
  Socket sock = test::connect_to(server.address());
  sock.sendall("boom!!!!");
  EXPECT_TRUE(test::ended_by_server(sock));
  ASSERT_TRUE(test::eventually([&] { return server.handle_error_calls() == 1; }));
  EXPECT_TRUE(test::eventually([&] {
    return logs.count(LogLevel::error, "----------------------------------------") == 1 &&
           logs.count(LogLevel::error, "handler failed on purpose") == 1;
  }));
  EXPECT_EQ(server.stats().handler_errors.load(), 1u);
  EXPECT_EQ(server.stats().peer_resets.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, PeerResetTest,
                         testing::Values(Mode::sync, Mode::threading, Mode::pool, Mode::async),
                         [](const auto& param_info) { return name_of(param_info.param); });

}  // namespace
}  // namespace sockserv
