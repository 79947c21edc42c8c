// SPDX-License-Identifier: MIT
// Issue 5, dead peers (the HOWTO's "when sockets die"): a peer that vanishes without a FIN or a
// RST is detected by keepalive and TCP_USER_TIMEOUT, and the handler blocked on it - its
// thread, child process or task - is released within a bounded time, in the sync, threading,
// forking and async servers.
//
// The test creates its own network namespace (`ip netns add sockserv-dp-PID-N`, deleted at the
// end) and builds servers and clients inside it from a thread that setns()'d into it, so the
// machine's own network is never touched. What kills the path: `ip link set lo down` inside the
// namespace. With loopback down the namespace's local routes (127.0.0.0/8) are gone, so every
// segment either end tries to send fails (ENETUNREACH) and nothing is acknowledged any more - to
// each side the other simply stopped answering. The server's keepalive probe (after 1 s idle)
// gets no answer, and TCP_USER_TIMEOUT (2 s, which also bounds keepalive probing) makes the
// kernel abort the connection with ETIMEDOUT: the handler's blocking read fails after ~2-3 s.
// Without root (no `ip netns add`) the test is skipped.
#include <sockserv/aio/server.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/log.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
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

// A network namespace of this test run, deleted by the destructor.
class NetNamespace {
 public:
  NetNamespace() {
    static std::atomic<int> counter{0};
    name_ = "sockserv-dp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    created_ = test::run_command({"ip", "netns", "add", name_}, {}, 10s).exit_code == 0;
    if (created_) created_ = exec({"ip", "link", "set", "lo", "up"});
  }
  ~NetNamespace() {
    if (!name_.empty()) test::run_command({"ip", "netns", "del", name_}, {}, 10s);
  }
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  bool created() const noexcept { return created_; }
  // Runs a command inside the namespace; true when it exits with 0.
  bool exec(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
    return test::run_command(argv, {}, 10s).exit_code == 0;
  }
  // Runs `body` on a thread that has entered the namespace: the sockets it creates live there.
  void inside(const std::function<void()>& body) {
    const int fd = ::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << "open /run/netns/" << name_;
    bool entered = false;
    std::thread([&] {
      entered = ::setns(fd, CLONE_NEWNET) == 0;
      if (entered) body();
    }).join();
    ::close(fd);
    ASSERT_TRUE(entered) << "setns failed";
  }

 private:
  std::string name_;
  bool created_ = false;
};

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

TEST(DeadPeerTest, VanishedPeerIsDetectedAndItsHandlerReleasedInEveryMode) {
  NetNamespace ns;
  if (!ns.created()) GTEST_SKIP() << "cannot create a network namespace (needs root)";
  LogCapture log;
  Reports reports;
  std::unique_ptr<TCPServer> sync, threading, forking;
  std::unique_ptr<aio::AsyncTCPServer> async;
  std::map<std::string, Socket> clients;
  ns.inside([&] {
    const Address any = Address::ipv4("127.0.0.1", 0);
    sync = std::make_unique<TCPServer>(any, blocked_reader(reports, "sync"), false);
    threading =
        std::make_unique<ThreadingTCPServer>(any, blocked_reader(reports, "threading"), false);
    forking = std::make_unique<ForkingTCPServer>(any, blocked_reader(reports, "forking"), false);
    async = std::make_unique<aio::AsyncTCPServer>(
        any, [&reports](aio::Connection c) { return async_blocked_reader(std::move(c), reports); },
        false);
    async->threads = 1;
    for (auto* s : {sync.get(), threading.get(), forking.get()}) configure(*s);
    configure(*async);
    // Connected from inside the namespace; the handshakes complete in the listen backlogs.
    clients["sync"] = create_connection(sync->server_address, 5s);
    clients["threading"] = create_connection(threading->server_address, 5s);
    clients["forking"] = create_connection(forking->server_address, 5s);
    clients["async"] = create_connection(async->server_address, 5s);
  });
  ASSERT_TRUE(sync && async && clients.size() == 4);
  std::vector<std::thread> serving;
  for (auto* s : {sync.get(), threading.get(), forking.get()}) {
    serving.emplace_back([s] { s->serve_forever(20ms); });
  }
  serving.emplace_back([&] { async->serve_forever(); });
  for (auto& [mode, client] : clients) {
    ASSERT_TRUE(test::wait_readable(client.fileno(), 5s)) << mode << " never greeted";
    EXPECT_EQ(client.recv(6), "ready\n") << mode;
  }
  // Every handler is now (about to be) blocked reading. Kill the path.
  ASSERT_TRUE(ns.exec({"ip", "link", "set", "lo", "down"}));
  const auto killed = Clock::now();
  const auto outcomes = reports.collect(4, killed + 12s);
  for (const std::string mode : {"sync", "threading", "forking", "async"}) {
    const auto it = outcomes.find(mode);
    ASSERT_NE(it, outcomes.end()) << mode << ": handler still blocked 12 s after the path died";
    EXPECT_EQ(it->second.first, "ETIMEDOUT") << mode;
    EXPECT_LT(it->second.second - killed, 10s) << mode;
  }
  // The servers counted and logged the timeout, and nothing is active any more.
  const auto deadline = Clock::now() + 5s;
  for (auto* stats : {&sync->stats, &threading->stats, &async->stats}) {
    while ((stats->active.load() != 0 || stats->timed_out.load() != 1) && Clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(stats->active.load(), 0u);
    EXPECT_EQ(stats->timed_out.load(), 1u);
  }
  for (const std::string mode : {"sync", "threading", "async"}) {
    EXPECT_TRUE(log.has(clients[mode].getsockname().to_string(), "timed out")) << mode;
  }
  for (auto* s : {sync.get(), threading.get(), forking.get()}) s->shutdown();
  async->shutdown();
  for (auto& t : serving) t.join();
  for (auto* s : {sync.get(), threading.get(), forking.get()}) s->server_close();
  async->server_close();
}

}  // namespace
}  // namespace sockserv
