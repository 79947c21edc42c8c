// SPDX-License-Identifier: MIT
// Issue 13 item 3, idle vs stalled-request timeouts (docs/adr/0006-timeout-defaults.md), in
// every mode - sync, threading, pool, forking, async - with real clients on loopback:
//  - an idle client (nothing unread, between requests) is kept past connection_timeout (the
//    stalled-request timeout) and dropped after idle_timeout;
//  - a client that stalls mid-request is dropped after connection_timeout, while an idle one
//    is still served;
//  - request.recv() (a raw handler) waits as idle too.
// No upper time bound is asserted: behaviour and order only, within the test's watchdog.
#include <sockserv/aio/server.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace sockserv {
namespace {

using namespace std::chrono_literals;

enum class Mode { sync, threading, pool, forking, async };

std::string name_of(Mode m) {
  constexpr const char* names[] = {"Sync", "Threading", "Pool", "Forking", "Async"};
  return names[static_cast<int>(m)];
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

RequestHandlerFactory upper_handler() {
  return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
    for (const std::string& line : self.rfile.lines()) self.wfile.write(upper(line));
  });
}

aio::Task<void> async_upper(aio::Connection conn) {
  for (std::string line; !(line = co_await conn.readline()).empty();) {
    co_await conn.sendall(upper(line));
  }
}

// A server of one mode with the upper-case line handler and both timeouts, serving on a
// thread until destroyed.
class ModeServer {
 public:
  ModeServer(Mode mode, Timeout request_timeout, Timeout idle_timeout,
             RequestHandlerFactory h = upper_handler()) {
    if (mode == Mode::async) {
      async_ = std::make_unique<aio::AsyncTCPServer>(test::loopback4(), async_upper, false);
      async_->connection_timeout = request_timeout;
      async_->idle_timeout = idle_timeout;
      async_->bind_and_activate();
      thread_ = std::thread([this] { async_->serve_forever(); });
      return;
    }
    const auto address = test::loopback4();
    switch (mode) {
      case Mode::threading:
        sync_ = std::make_unique<ThreadingTCPServer>(address, std::move(h), false);
        break;
      case Mode::pool:
        sync_ = std::make_unique<ThreadPoolTCPServer>(address, std::move(h), false);
        break;
      case Mode::forking:
        sync_ = std::make_unique<ForkingTCPServer>(address, std::move(h), false);
        break;
      default:
        sync_ = std::make_unique<TCPServer>(address, std::move(h), false);
    }
    sync_->connection_timeout = request_timeout;
    sync_->idle_timeout = idle_timeout;
    // A forked child holds copies of the test's client sockets (the server runs in the test's
    // process), so an idle child never sees EOF: server_close() ends it after this.
    sync_->shutdown_grace = 1s;
    sync_->bind_and_activate();
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

 private:
  std::unique_ptr<TCPServer> sync_;
  std::unique_ptr<aio::AsyncTCPServer> async_;
  std::thread thread_;
};

// Sends a line and reads the answer; "" when the connection is gone.
std::string ask(Socket& sock, const std::string& line) {
  try {
    sock.sendall(line);
    return test::recv_line(sock);
  } catch (const ConnectionError&) {
    return {};
  }
}

class IdleTimeoutTest : public testing::TestWithParam<Mode> {};

TEST_P(IdleTimeoutTest, IdleClientIsKeptPastTheRequestTimeoutAndDroppedAfterTheIdleTimeout) {
  ModeServer server(GetParam(), 300ms, 2s);
  Socket client = test::connect_to(server.address());
  ASSERT_EQ(ask(client, "one\n"), "ONE\n");
  // Idle between requests for longer than the stalled-request timeout: still served.
  std::this_thread::sleep_for(900ms);
  ASSERT_EQ(ask(client, "two\n"), "TWO\n") << "an idle client was cut by the request timeout";
  // Idle for longer than that from the start too (nothing ever sent on this one).
  Socket silent = test::connect_to(server.address());
  std::this_thread::sleep_for(900ms);
  if (GetParam() != Mode::sync) {  // the sync server is busy with `client` meanwhile
    EXPECT_EQ(ask(silent, "three\n"), "THREE\n");
  }
  // Then left idle: the server ends it (idle_timeout), long before the client's 10 s timeout.
  EXPECT_TRUE(test::ended_by_server(client));
}

TEST_P(IdleTimeoutTest, ClientStallingMidRequestIsDroppedWhileAnIdleOneIsKept) {
  ModeServer server(GetParam(), 300ms, std::nullopt);
  const bool concurrent = GetParam() != Mode::sync;
  // (The sync server handles one connection at a time: an idle one would hold it for good.)
  Socket idle;
  if (concurrent) {
    idle = test::connect_to(server.address());
    ASSERT_EQ(ask(idle, "idle\n"), "IDLE\n");
  }
  Socket stalled = test::connect_to(server.address());
  stalled.sendall("half a requ");  // no newline: the request has started and stops
  EXPECT_TRUE(test::ended_by_server(stalled)) << "a stalled request was never cut off";
  // The idle client has now waited longer than the request timeout, and is still served.
  if (concurrent) {
    std::this_thread::sleep_for(400ms);
    EXPECT_EQ(ask(idle, "still here\n"), "STILL HERE\n");
  }
}

// A raw handler's request.recv() is a wait for more bytes: idle, not a stalled request.
TEST_P(IdleTimeoutTest, RawRequestRecvWaitsAsIdle) {
  if (GetParam() == Mode::async) GTEST_SKIP() << "no Request in the async server";
  auto echo = [](Request& request, const Address&, BaseServer&) {
    for (std::string data; !(data = request.recv(1024)).empty();) request.sendall(upper(data));
  };
  ModeServer server(GetParam(), 300ms, 2s, echo);
  Socket client = test::connect_to(server.address());
  ASSERT_EQ(ask(client, "one\n"), "ONE\n");
  std::this_thread::sleep_for(900ms);
  ASSERT_EQ(ask(client, "two\n"), "TWO\n") << "request.recv() was cut by the request timeout";
  EXPECT_TRUE(test::ended_by_server(client));
}

INSTANTIATE_TEST_SUITE_P(Modes, IdleTimeoutTest,
                         testing::Values(Mode::sync, Mode::threading, Mode::pool, Mode::forking,
                                         Mode::async),
                         [](const auto& param_info) { return name_of(param_info.param); });

}  // namespace
}  // namespace sockserv
