// SPDX-License-Identifier: MIT
// Issue 5, faults: a bounded mix of what the open internet does to a server - a burst of 300
// concurrent clients, slow clients, resets in the middle of a message (SO_LINGER 0), half-closes,
// clients that vanish in the middle of a long reply, lines over the limit, a PROXY header cut
// short by a FIN - against the threading and the async server. Each fault ends that connection
// only; the others are answered correctly, and afterwards the process's descriptors
// (/proc/self/fd), threads (/proc/self/task) and stats.active are back to their baseline. Run
// under the asan and tsan presets too (leaks, races).
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

#include <dirent.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string upper(std::string line) {
  for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return line;
}

// The threading server, with handle_error counting instead of printing a banner per fault.
class QuietThreadingServer : public ThreadingTCPServer {
 public:
  explicit QuietThreadingServer(const Address& address)
      : ThreadingTCPServer(address, handler<StreamRequestHandler>([](StreamRequestHandler& self) {
                             for (const auto& line : self.rfile.lines()) {
                               self.wfile.write(upper(line));
                             }
                           }),
                           false) {}
  void handle_error(Request&, const Address&, std::exception_ptr) override { ++errors; }
  void serve() { serve_forever(20ms); }
  std::atomic<int> errors{0};
};

aio::Task<void> async_upper(aio::Connection conn) {
  for (std::string line; !(line = co_await conn.readline()).empty();) {
    co_await conn.sendall(upper(std::move(line)));
  }
}

class QuietAsyncServer : public aio::AsyncTCPServer {
 public:
  explicit QuietAsyncServer(const Address& address)
      : aio::AsyncTCPServer(address, async_upper, false) {
    threads = 2;
  }
  void handle_error(const Address&, std::exception_ptr) override { ++errors; }
  void serve() { serve_forever(); }
  std::atomic<int> errors{0};
};

std::size_t count_threads() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

using test::connect_to;
using test::ended_by_server;
using test::recv_line;

template <class Server>
class FaultTest : public testing::Test {
 protected:
  void SetUp() override {
    set_log_sink([](LogLevel, std::string_view) {});  // faults are expected: keep the log quiet
    server_ = std::make_unique<Server>(test::loopback4());
    server_->connection_timeout = 5s;
    server_->bind_and_activate();
    thread_ = std::thread([this] { server_->serve(); });
    request("warm-up\n");  // threads, buffers and lazily opened descriptors exist from here on
    // The baseline: once the warm-up request is over on the server's side too (its thread may
    // still be exiting, its descriptor closing), the counts no longer change.
    const auto deadline = Clock::now() + 5s;
    while (server_->stats.active.load() != 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    fds_ = test::count_open_fds();
    threads_ = count_threads();
    for (;;) {
      std::this_thread::sleep_for(20ms);
      const auto fds = test::count_open_fds();
      const auto threads = count_threads();
      if ((fds == fds_ && threads == threads_) || Clock::now() >= deadline) break;
      fds_ = fds;
      threads_ = threads;
    }
  }
  void TearDown() override {
    server_->shutdown();
    thread_.join();
    server_->server_close();
    server_.reset();
    set_log_sink({});
  }

  void request(const std::string& line) {
    Socket s = connect_to(server_->server_address);
    s.sendall(line);
    EXPECT_EQ(recv_line(s), upper(line));
  }

  // Waits until the process is back to its baseline: nothing active, no extra descriptor or
  // thread.
  void expect_baseline() {
    const auto deadline = Clock::now() + 15s;
    auto settled = [&] {
      return server_->stats.active.load() == 0 && test::count_open_fds() == fds_ &&
             count_threads() == threads_;
    };
    while (!settled() && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(server_->stats.active.load(), 0u);
    EXPECT_EQ(test::count_open_fds(), fds_);
    EXPECT_EQ(count_threads(), threads_);
  }

  const Address& address() const { return server_->server_address; }

  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::size_t fds_ = 0;
  std::size_t threads_ = 0;
};

using Servers = testing::Types<QuietThreadingServer, QuietAsyncServer>;
struct ServerName {
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, QuietAsyncServer> ? "Async" : "Threading";
  }
};
TYPED_TEST_SUITE(FaultTest, Servers, ServerName);

TYPED_TEST(FaultTest, BurstOf300ConcurrentClientsIsServedAndLeavesNothingBehind) {
  std::vector<Socket> clients;
  for (int i = 0; i < 300; ++i) clients.push_back(connect_to(this->address()));
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].sendall("burst " + std::to_string(i) + "\n");
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_EQ(recv_line(clients[i]), "BURST " + std::to_string(i) + "\n");
  }
  clients.clear();
  this->expect_baseline();
}

// Each kind of fault runs on its own client thread, all at once, next to normal clients.
TYPED_TEST(FaultTest, MixOfFaultsEndsOnlyTheFaultyConnections) {
  const Address address = this->address();
  std::atomic<int> wrong{0};
  auto check = [&wrong](bool ok) {
    if (!ok) ++wrong;
  };
  std::vector<std::function<void()>> kinds = {
      [&] {  // slow clients: a line in three pieces
        for (int i = 0; i < 8; ++i) {
          Socket s = connect_to(address);
          s.set_nodelay(true);
          for (const char* piece : {"sl", "o", "w\n"}) {
            s.sendall(piece);
            std::this_thread::sleep_for(20ms);  // pacing, not synchronisation
          }
          check(recv_line(s) == "SLOW\n");
        }
      },
      [&] {  // resets in the middle of a message
        for (int i = 0; i < 20; ++i) {
          Socket s = connect_to(address);
          s.sendall("partial line without its end");
          s.set_linger(0s);
          s.close();
        }
      },
      [&] {  // half-closes: the replies still come, then EOF
        for (int i = 0; i < 20; ++i) {
          Socket s = connect_to(address);
          s.sendall("a\nb\n");
          s.shutdown(SHUT_WR);
          std::string all;
          for (std::string chunk; !(chunk = s.recv(4096)).empty();) all += chunk;
          check(all == "A\nB\n");
        }
      },
      [&] {  // vanish in the middle of a long reply
        const std::string lines = [] {
          std::string text;
          for (int i = 0; i < 640; ++i) text += std::string(99, 'v') + "\n";
          return text;
        }();
        for (int i = 0; i < 8; ++i) {
          Socket s(AF_INET, SOCK_STREAM);
          s.set_recv_buffer_size(4096);  // small, so the server is still writing when we go
          s.settimeout(10s);
          s.connect(address);
          s.sendall(lines);
          check(!s.recv(100).empty());
          s.set_linger(0s);  // gone, with most of the reply unread
        }
      },
      [&] {  // lines over the 64 KiB limit: that connection ends, with an error
        for (int i = 0; i < 4; ++i) {
          Socket s = connect_to(address);
          try {
            s.sendall(std::string(100 * 1024, 'h'));
          } catch (const ConnectionError&) {
            // The server may reset the connection before all of it is sent.
          }
          check(ended_by_server(s));
        }
      },
      [&] {  // normal clients all along
        for (int i = 0; i < 40; ++i) {
          Socket s = connect_to(address);
          s.sendall("normal " + std::to_string(i) + "\n");
          check(recv_line(s) == "NORMAL " + std::to_string(i) + "\n");
        }
      },
  };
  std::vector<std::thread> threads;
  for (auto& kind : kinds) {
    threads.emplace_back([&kind, &wrong] {
      try {
        kind();
      } catch (const std::exception& e) {
        ++wrong;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  // The async server reports a handler's error after its frame (and connection) is gone, so the
  // client can see the end before the report is counted.
  EXPECT_TRUE(test::eventually([this] { return this->server_->errors.load() >= 4; }))
      << "the over-long lines were not reported";
  this->request("still serving\n");
  this->expect_baseline();
}

// A PROXY header cut short by the client's FIN ends that connection at once (no spinning, no
// waiting for the timeout), counted as rejected.
TYPED_TEST(FaultTest, ProxyHeaderCutShortByFinEndsOnlyThatConnection) {
  this->server_->shutdown();
  this->thread_.join();
  this->server_->proxy_protocol = true;
  this->thread_ = std::thread([this] { this->server_->serve(); });
  Socket s = connect_to(this->address());
  s.sendall("PROXY TCP4 203.0.113.7 19");
  s.shutdown(SHUT_WR);
  const auto start = Clock::now();
  s.settimeout(3s);  // well under connection_timeout (5 s)
  EXPECT_TRUE(ended_by_server(s));
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_TRUE(test::eventually([this] { return this->server_->stats.rejected.load() == 1; }))
      << this->server_->stats.rejected.load() << " rejected";
  Socket ok = connect_to(this->address());
  ok.sendall(encode_proxy_v1(Address::ipv4("203.0.113.7", 1), this->address()) + "fine\n");
  EXPECT_EQ(recv_line(ok), "FINE\n");
}

}  // namespace
}  // namespace sockserv
