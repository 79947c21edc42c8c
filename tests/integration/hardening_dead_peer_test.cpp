// SPDX-License-Identifier: MIT
// Issue 5, dead peers (the HOWTO's "when sockets die"): a peer that vanishes without a FIN or a
// RST is detected by keepalive and TCP_USER_TIMEOUT, and the handler blocked on it - its
// thread, child process or task - is released within a bounded time, in the sync, threading,
// forking and async servers.
//
// Each test creates its own network namespace (`ip netns add sockserv-dp-PID-N`, deleted at the
// end; one left by a killed run is removed by the next) and builds servers and clients inside it
// from a thread that setns()'d into it, so the machine's own network is never touched. What kills
// the path: `ip link set lo down` inside the namespace. With loopback down the namespace's local
// routes (127.0.0.0/8) are gone, so every segment either end tries to send fails (ENETUNREACH) and
// nothing is acknowledged any more - to each side the other simply stopped answering. The server's
// keepalive probe (after 1 s idle) gets no answer, and TCP_USER_TIMEOUT (2 s, which also bounds
// keepalive probing) makes the kernel abort the connection with ETIMEDOUT: the handler's blocking
// read fails after ~2-3 s. Without root (no `ip netns add`) the test is skipped.
#include <sockserv/aio/server.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/log.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/net_namespace.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::NetNamespace;

// Handlers report how their blocking read ended, one line each, through a pipe: a forked child
// can write it as well as a thread.
class Reports {
 public:
  Reports() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
  }
  ~Reports() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  Reports(const Reports&) = delete;
  Reports& operator=(const Reports&) = delete;

  void report(const std::string& mode, const std::exception* error) const {
    std::string line = mode + " ";
    if (const auto* e = dynamic_cast<const std::system_error*>(error)) {
      line += e->code() == std::errc::timed_out ? "ETIMEDOUT" : e->code().message();
    } else {
      line += error ? error->what() : "EOF";
    }
    line += "\n";
    [[maybe_unused]] const auto n = ::write(fds_[1], line.data(), line.size());
  }
  // Reads reports until `count` have come or `deadline` passes: mode -> (outcome, when).
  std::map<std::string, std::pair<std::string, Clock::time_point>> collect(
      std::size_t count, Clock::time_point deadline) {
    std::map<std::string, std::pair<std::string, Clock::time_point>> out;
    std::string pending;
    while (out.size() < count && Clock::now() < deadline) {
      if (!test::wait_readable(fds_[0], std::chrono::duration_cast<std::chrono::milliseconds>(
                                            deadline - Clock::now()))) {
        break;
      }
      char buf[256];
      const auto n = ::read(fds_[0], buf, sizeof buf);
      if (n <= 0) break;
      pending.append(buf, static_cast<std::size_t>(n));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        const auto space = line.find(' ');
        out[line.substr(0, space)] = {line.substr(space + 1), Clock::now()};
      }
    }
    return out;
  }

 private:
  int fds_[2];
};

// Greets, then blocks reading a line that never comes; reports how the read ended.
RequestHandlerFactory blocked_reader(const Reports& reports, std::string mode) {
  return handler<StreamRequestHandler>([&reports, mode](StreamRequestHandler& self) {
    self.wfile.write("ready\n");
    try {
      self.rfile.readline();
    } catch (const std::exception& e) {
      reports.report(mode, &e);
      throw;
    }
    reports.report(mode, nullptr);
  });
}

aio::Task<void> async_blocked_reader(aio::Connection conn, const Reports& reports) {
  co_await conn.sendall("ready\n");
  try {
    co_await conn.readline();
  } catch (const std::exception& e) {
    reports.report("async", &e);
    throw;
  }
  reports.report("async", nullptr);
}

template <class Server>
void configure(Server& server) {
  server.connection_timeout = std::nullopt;  // only dead-peer detection may end the read
  server.keepalive = KeepAlive{1s, 1s, 2};
  server.tcp_user_timeout = 2s;
  server.bind_and_activate();
}

// Collects log lines (installed before any server thread starts, removed after they end).
struct LogCapture {
  LogCapture() {
    set_log_sink([this](LogLevel, std::string_view message) {
      std::lock_guard lock(mutex);
      text += std::string(message) + "\n";
    });
  }
  ~LogCapture() { set_log_sink({}); }
  bool has(std::string_view a, std::string_view b) {
    std::lock_guard lock(mutex);
    for (std::size_t at = text.find(a); at != std::string::npos; at = text.find(a, at + 1)) {
      const auto end = text.find('\n', at);
      if (text.substr(at, end - at).find(b) != std::string::npos) return true;
    }
    return false;
  }
  std::mutex mutex;
  std::string text;
};

// Servers of some modes inside one namespace, each with one client whose handler is blocked
// reading; kill_path() takes loopback down. The destructor stops and closes everything, also
// after a failed assertion.
class Scenario {
 public:
  explicit Scenario(NetNamespace& ns) : ns_(ns) {}
  ~Scenario() {
    for (auto& s : sync_) s->shutdown();
    if (async_) async_->shutdown();
    for (auto& t : serving_) t.join();
    for (auto& s : sync_) s->server_close();
    if (async_) async_->server_close();
  }
  Scenario(const Scenario&) = delete;
  Scenario& operator=(const Scenario&) = delete;

  // Builds the servers inside the namespace and connects a client to each.
  void build(const std::vector<std::string>& modes) {
    ns_.inside([&] {
      const Address any = Address::ipv4("127.0.0.1", 0);
      for (const auto& mode : modes) {
        if (mode == "async") {
          async_ = std::make_unique<aio::AsyncTCPServer>(
              any,
              [this](aio::Connection c) { return async_blocked_reader(std::move(c), reports); },
              false);
          async_->threads = 1;
          configure(*async_);
          clients[mode] = create_connection(async_->server_address, 5s);
          continue;
        }
        auto handler = blocked_reader(reports, mode);
        std::unique_ptr<TCPServer> server;
        if (mode == "threading") {
          server = std::make_unique<ThreadingTCPServer>(any, handler, false);
        } else if (mode == "forking") {
          server = std::make_unique<ForkingTCPServer>(any, handler, false);
        } else {
          server = std::make_unique<TCPServer>(any, handler, false);
        }
        configure(*server);
        clients[mode] = create_connection(server->server_address, 5s);
        stats[mode] = &server->stats;
        sync_.push_back(std::move(server));
      }
    });
    if (async_) stats["async"] = &async_->stats;
  }
  // Serves; returns once every handler has greeted its client (and is about to block).
  void start() {
    for (auto& s : sync_) serving_.emplace_back([p = s.get()] { p->serve_forever(20ms); });
    if (async_) serving_.emplace_back([this] { async_->serve_forever(); });
    for (auto& [mode, client] : clients) {
      ASSERT_TRUE(test::wait_readable(client.fileno(), 5s)) << mode << " never greeted";
      EXPECT_EQ(client.recv(6), "ready\n") << mode;
    }
  }
  // Kills the path and expects every handler's read to fail with ETIMEDOUT within 10 s.
  void kill_path_and_expect_release() {
    ASSERT_TRUE(ns_.exec({"ip", "link", "set", "lo", "down"}));
    const auto killed = Clock::now();
    const auto outcomes = reports.collect(clients.size(), killed + 12s);
    for (const auto& [mode, client] : clients) {
      const auto it = outcomes.find(mode);
      ASSERT_NE(it, outcomes.end()) << mode << ": handler still blocked 12 s after the path died";
      EXPECT_EQ(it->second.first, "ETIMEDOUT") << mode;
      EXPECT_LT(it->second.second - killed, 10s) << mode;
    }
  }

  Reports reports;
  std::map<std::string, Socket> clients;
  std::map<std::string, ServerStats*> stats;  // the servers whose counters live in this process

 private:
  NetNamespace& ns_;
  std::vector<std::unique_ptr<TCPServer>> sync_;
  std::unique_ptr<aio::AsyncTCPServer> async_;
  std::vector<std::thread> serving_;
};

TEST(DeadPeerTest, VanishedPeerReleasesTheSyncThreadingAndAsyncHandlers) {
  NetNamespace ns("sockserv-dp-");
  if (!ns.created()) GTEST_SKIP() << "cannot create a network namespace (needs root)";
  LogCapture log;
  {
    Scenario scenario(ns);
    scenario.build({"sync", "threading", "async"});
    ASSERT_NO_FATAL_FAILURE(scenario.start());
    ASSERT_NO_FATAL_FAILURE(scenario.kill_path_and_expect_release());
    // Counted and logged as a timeout; nothing active any more.
    const auto deadline = Clock::now() + 5s;
    for (const auto& [mode, stats] : scenario.stats) {
      const std::string client = scenario.clients[mode].getsockname().to_string();
      while ((stats->active.load() != 0 || stats->timed_out.load() != 1 ||
              !log.has(client, "timed out")) &&
             Clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
      }
      EXPECT_EQ(stats->active.load(), 0u) << mode;
      EXPECT_EQ(stats->timed_out.load(), 1u) << mode;
      EXPECT_TRUE(log.has(client, "timed out")) << mode << ":\n" << log.text;
    }
  }
}

// Alone in its namespace and process phase: a fork() while other servers' threads run could
// copy a lock one of them holds into the child.
TEST(DeadPeerTest, VanishedPeerReleasesTheForkedChild) {
  NetNamespace ns("sockserv-dp-");
  if (!ns.created()) GTEST_SKIP() << "cannot create a network namespace (needs root)";
  Scenario scenario(ns);
  scenario.build({"forking"});
  ASSERT_NO_FATAL_FAILURE(scenario.start());
  scenario.kill_path_and_expect_release();
}

}  // namespace
}  // namespace sockserv
