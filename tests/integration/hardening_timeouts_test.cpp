// SPDX-License-Identifier: MIT
// Issue 5, timeouts: a slowloris client (one byte every 200 ms, never a whole line) is cut off
// by connection_timeout = 1 s in every mode - sync, threading, pool, forking, async - while a
// normal client is served promptly (after the cut-off in the sync server, which handles one
// request at a time); the same for a PROXY header that trickles in. And the logger: a custom
// sink receives the timeout events, the default sink writes a timestamp and a level.
#include <sockserv/aio/server.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/log.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/proxy_protocol.hpp>
#include <sockserv/server.hpp>

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

enum class Mode { sync, threading, pool, forking, async };

std::string name_of(Mode m) {
  constexpr const char* names[] = {"Sync", "Threading", "Pool", "Forking", "Async"};
  return names[static_cast<int>(m)];
}

RequestHandlerFactory upper_handler() {
  return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
    for (std::string line : self.rfile.lines()) {
      for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      self.wfile.write(line);
    }
  });
}

aio::Task<void> async_upper(aio::Connection conn) {
  for (std::string line; !(line = co_await conn.readline()).empty();) {
    for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    co_await conn.sendall(line);
  }
}

// A server of one mode with the upper-case line handler and connection_timeout, serving on a
// thread until destroyed.
class ModeServer {
 public:
  ModeServer(Mode mode, Timeout connection_timeout, bool proxy_protocol = false) : mode_(mode) {
    if (mode == Mode::async) {
      async_ = std::make_unique<aio::AsyncTCPServer>(test::loopback4(), async_upper, false);
      async_->threads = 2;
      async_->connection_timeout = connection_timeout;
      async_->idle_timeout = connection_timeout;  // every wait bounded (ADR 0006)
      async_->proxy_protocol = proxy_protocol;
      async_->bind_and_activate();
      thread_ = std::thread([this] { async_->serve_forever(); });
      return;
    }
    sync_ = make_sync(mode);
    sync_->connection_timeout = connection_timeout;
    sync_->idle_timeout = connection_timeout;  // every wait bounded (ADR 0006)
    sync_->proxy_protocol = proxy_protocol;
    sync_->bind_and_activate();
    thread_ = std::thread([this] { sync_->serve_forever(20ms); });
  }
  ~ModeServer() {
    if (async_) async_->shutdown();
    if (sync_) sync_->shutdown();
    thread_.join();
    if (sync_) sync_->server_close();  // joins threads, reaps children
  }
  ModeServer(const ModeServer&) = delete;
  ModeServer& operator=(const ModeServer&) = delete;

  const Address& address() const { return async_ ? async_->server_address : sync_->server_address; }
  const ServerStats& stats() const { return async_ ? async_->stats : sync_->stats; }
  // Whether requests run at the same time (the sync server handles one after another).
  bool concurrent() const { return mode_ != Mode::sync; }

 private:
  static std::unique_ptr<TCPServer> make_sync(Mode mode) {
    const auto address = test::loopback4();
    switch (mode) {
      case Mode::threading:
        return std::make_unique<ThreadingTCPServer>(address, upper_handler(), false);
      case Mode::pool:
        return std::make_unique<ThreadPoolTCPServer>(address, upper_handler(), false);
      case Mode::forking:
        return std::make_unique<ForkingTCPServer>(address, upper_handler(), false);
      default:
        return std::make_unique<TCPServer>(address, upper_handler(), false);
    }
  }

  Mode mode_;
  std::unique_ptr<TCPServer> sync_;
  std::unique_ptr<aio::AsyncTCPServer> async_;
  std::thread thread_;
};

using test::recv_line;

using test::eventually;

struct Trickle {
  bool cut_off = false;
  Clock::duration after{};  // from connect to the cut-off
};

// The slowloris client: one byte of `payload` every 200 ms (at most 30 bytes, 6 s), until the
// server closes or resets the connection.
Trickle trickle(const Address& address, std::string_view payload, std::atomic<int>& sent) {
  Socket sock = create_connection(address, 5s);
  sock.set_nodelay(true);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < 30; ++i) {
    std::error_code ec;
    sock.send(payload.substr(i % payload.size(), 1), ec);
    if (ec) return {true, Clock::now() - start};
    ++sent;
    if (test::wait_readable(sock.fileno(), 200ms)) {
      char byte;
      const auto n = sock.recv_into({&byte, 1}, ec);
      if (ec || n == 0) return {true, Clock::now() - start};
      ADD_FAILURE() << "the server answered a partial line";
    }
  }
  return {false, Clock::now() - start};
}

// One whole request from a normal client; returns the reply and how long it took.
std::pair<std::string, Clock::duration> normal_request(const Address& address,
                                                       std::string_view prefix = {}) {
  const auto start = Clock::now();
  Socket sock = create_connection(address, 10s);
  sock.sendall(std::string(prefix) + "normal\n");
  std::string reply = recv_line(sock);
  return {reply, Clock::now() - start};
}

class SlowlorisTest : public testing::TestWithParam<Mode> {
 protected:
  // Runs a trickler with `payload` and, once the server is busy with it, a normal client.
  void run(ModeServer& server, std::string_view payload, std::string_view normal_prefix) {
    std::atomic<int> sent{0};
    Trickle result;
    std::thread trickler([&] { result = trickle(server.address(), payload, sent); });
    // The server holds the trickler's connection: two bytes went out, and a request is active
    // (a forking server's running children are its active requests).
    EXPECT_TRUE(eventually([&] { return sent.load() >= 2; }));
    EXPECT_TRUE(eventually([&] { return server.stats().snapshot().active >= 1; }));
    const auto [reply, took] = normal_request(server.address(), normal_prefix);
    trickler.join();
    EXPECT_TRUE(result.cut_off) << "a client trickling for 6 s was never cut off";
    EXPECT_GE(result.after, 800ms);
    EXPECT_LT(result.after, 4s);
    EXPECT_EQ(reply, "NORMAL\n");
    if (server.concurrent()) {
      EXPECT_LT(took, 1s) << "a normal client waited behind the slow one";
    } else {
      EXPECT_GT(took, 300ms) << "the sync server served the next client before the cut-off?";
      EXPECT_LT(took, 4s);
    }
  }
};

TEST_P(SlowlorisTest, TricklingClientIsCutOffAndOthersAreServed) {
  ModeServer server(GetParam(), 1s);
  run(server, "slowloris", {});
  // snapshot(): a forking server's children hand their counts to it as they end.
  EXPECT_TRUE(eventually([&] { return server.stats().snapshot().timed_out >= 1; }));
  EXPECT_TRUE(eventually([&] { return server.stats().snapshot().active == 0; }));
}

// The PROXY header must arrive within the connection timeout as a whole, too.
TEST_P(SlowlorisTest, TricklingProxyHeaderIsCutOffAndOthersAreServed) {
  ModeServer server(GetParam(), 1s, true);
  const std::string header =
      encode_proxy_v1(Address::ipv4("203.0.113.7", 5555), Address::ipv4("127.0.0.1", 80));
  run(server, header, header);
  EXPECT_TRUE(eventually([&] { return server.stats().snapshot().rejected >= 1; }));
}

INSTANTIATE_TEST_SUITE_P(AllModes, SlowlorisTest,
                         testing::Values(Mode::sync, Mode::threading, Mode::pool, Mode::forking,
                                         Mode::async),
                         [](const testing::TestParamInfo<Mode>& p) { return name_of(p.param); });

// ---- Logger ------------------------------------------------------------------------------------

// Collects what the sockserv logger reports, between construction and destruction.
class LogCapture {
 public:
  LogCapture() {
    set_log_sink([this](LogLevel level, std::string_view message) {
      std::lock_guard lock(mutex_);
      lines_.push_back(std::string(to_string(level)) + " " + std::string(message));
    });
  }
  ~LogCapture() { set_log_sink({}); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  bool contains(std::string_view a, std::string_view b) {
    std::lock_guard lock(mutex_);
    for (const auto& line : lines_) {
      if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

TEST(LoggerTest, CustomSinkReceivesTheTimeoutEventWithTheClientAddress) {
  LogCapture capture;  // installed before the server's threads start, removed after they end
  for (const Mode mode : {Mode::threading, Mode::async}) {
    ModeServer server(mode, 300ms);
    Socket idle = create_connection(server.address(), 5s);
    ASSERT_TRUE(test::wait_readable(idle.fileno(), 5s)) << name_of(mode);
    EXPECT_EQ(idle.recv(1), "");  // cut off
    const std::string client = idle.getsockname().to_string();
    EXPECT_TRUE(eventually([&] { return capture.contains("timed out", client); })) << name_of(mode);
    EXPECT_TRUE(capture.contains("INFO connection from " + client, "timed out"));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(LoggerTest, DefaultSinkWritesOneLineWithTimestampAndLevel) {
  test::TempDir dir;
  const std::string path = dir.path("stderr");
  set_log_sink({});
  ASSERT_EQ(log_level(), LogLevel::info);
  const int saved = ::dup(STDERR_FILENO);
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  ::dup2(file, STDERR_FILENO);
  ::close(file);
  log(LogLevel::debug, "not shown at the default level");
  log(LogLevel::warning, "accept 127.0.0.1:1: Too many open files; retrying in 5 ms");
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  const std::regex line(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING accept 127\.0\.0\.1:1: Too many open )"
      R"(files; retrying in 5 ms\n)");
  const std::string text = read_file(path);
  EXPECT_TRUE(std::regex_match(text, line)) << text;
}

}  // namespace
}  // namespace sockserv
