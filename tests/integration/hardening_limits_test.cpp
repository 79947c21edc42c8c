// SPDX-License-Identifier: MIT
// Issue 5, limits: max_connections (threading, thread pool, forking's max_children, async) -
// at the limit the server stops accepting, the next client waits in the kernel's backlog and is
// served as soon as a request ends; and dead-peer detection settings (keepalive,
// TCP_USER_TIMEOUT) that every accepted connection inherits from the listening socket.
#include <sockserv/aio/server.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Runs serve_forever() on a thread; the destructor shuts the server down and joins.
template <class Server>
class Serving {
 public:
  explicit Serving(Server& server) : server_(server), thread_([this] { run(); }) {}
  ~Serving() {
    server_.shutdown();
    thread_.join();
  }
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;

 private:
  void run() {
    try {
      server_.serve_forever();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "serve_forever: " << e.what();
    }
  }
  Server& server_;
  std::thread thread_;
};

// Samples `counter` every millisecond and keeps the largest value seen.
class PeakSampler {
 public:
  explicit PeakSampler(const std::atomic<std::uint64_t>& counter)
      : counter_(counter), thread_([this] { run(); }) {}
  ~PeakSampler() { stop(); }
  std::uint64_t stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    return peak_;
  }

 private:
  void run() {
    while (!done_) {
      peak_ = std::max<std::uint64_t>(peak_, counter_.load());
      std::this_thread::sleep_for(1ms);
    }
  }
  const std::atomic<std::uint64_t>& counter_;
  std::atomic<bool> done_{false};
  std::uint64_t peak_ = 0;
  std::thread thread_;
};

// Counts handlers running at once and remembers the most.
struct Concurrency {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  void enter() {
    const int n = ++now;
    int seen = peak.load();
    while (n > seen && !peak.compare_exchange_weak(seen, n)) {
    }
  }
  void leave() { --now; }
};

// The handler protocol of these tests: the server greets with "hello\n" when the handler
// starts, then holds the request until the client sends a line, and answers "done\n".
RequestHandlerFactory greeting_handler(Concurrency& c) {
  return handler<StreamRequestHandler>([&c](StreamRequestHandler& self) {
    c.enter();
    struct Leave {
      Concurrency& c;
      ~Leave() { c.leave(); }
    } leave{c};
    self.wfile.write("hello\n");
    self.rfile.readline();
    self.wfile.write("done\n");
  });
}

// Coroutine handlers are free functions bound by a plain lambda, so the coroutine never refers
// to a lambda object's captures.
aio::Task<void> greet(aio::Connection conn, Concurrency& c) {
  c.enter();
  try {
    co_await conn.sendall("hello\n");
    co_await conn.readline();
    co_await conn.sendall("done\n");
  } catch (...) {
    c.leave();
    throw;
  }
  c.leave();
}

aio::ConnectionHandler async_greeting_handler(Concurrency& c) {
  return [&c](aio::Connection conn) { return greet(std::move(conn), c); };
}

// One line from `sock`, each recv bounded by the socket's timeout.
using test::recv_line;

using test::connect_to;

// True when `client` has been greeted within `wait` (consumes the greeting).
bool greeted(Socket& client, std::chrono::milliseconds wait) {
  if (!test::wait_readable(client.fileno(), wait)) return false;
  return recv_line(client) == "hello\n";
}

// Ends a client's request: the line that releases the handler, its answer, then close.
void release(Socket& client) {
  client.sendall("bye\n");
  EXPECT_EQ(recv_line(client), "done\n");
  client.close();
}

using test::eventually;

// The shared scenario for the threading and async servers with max_connections = 3: three
// clients are greeted, the fourth is connected (the kernel completed the handshake) but not
// served until one of the three ends.
template <class Server>
void expect_fourth_waits_for_a_slot(Server& server, Concurrency& concurrency) {
  PeakSampler active(server.stats.active);
  std::vector<Socket> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(connect_to(server.server_address));
    ASSERT_TRUE(greeted(clients.back(), 5s)) << "client " << i;
  }
  clients.push_back(connect_to(server.server_address));  // accepted by the kernel
  EXPECT_FALSE(greeted(clients[3], 300ms)) << "served past max_connections";
  EXPECT_EQ(server.stats.active.load(), 3u);
  release(clients[0]);
  EXPECT_TRUE(greeted(clients[3], 5s)) << "not served after a slot freed";
  for (int i = 1; i < 4; ++i) release(clients[static_cast<std::size_t>(i)]);
  EXPECT_TRUE(eventually([&] { return server.stats.active.load() == 0; }));
  EXPECT_EQ(active.stop(), 3u);
  EXPECT_EQ(concurrency.peak.load(), 3);
  EXPECT_EQ(server.stats.accepted.load(), 4u);
}

TEST(MaxConnectionsTest, ThreadingServerServesTheFourthOnlyAfterOneEnds) {
  Concurrency concurrency;
  ThreadingTCPServer server(test::loopback4(), greeting_handler(concurrency));
  server.max_connections = 3;
  Serving serving(server);
  expect_fourth_waits_for_a_slot(server, concurrency);
}

TEST(MaxConnectionsTest, AsyncServerServesTheFourthOnlyAfterOneEnds) {
  Concurrency concurrency;
  aio::AsyncTCPServer server(test::loopback4(), async_greeting_handler(concurrency));
  server.threads = 2;
  server.max_connections = 3;
  Serving serving(server);
  expect_fourth_waits_for_a_slot(server, concurrency);
  EXPECT_EQ(server.active_tasks(), 0u);
}

// pool_size 2 + queue_size 1: two requests run, one waits in the queue (accepted, not served),
// and the fourth is not even accepted until the queue has room again.
TEST(MaxConnectionsTest, ThreadPoolRunsPoolSizeQueuesQueueSizeAndLeavesTheRestInTheBacklog) {
  Concurrency concurrency;
  ThreadPoolTCPServer server(test::loopback4(), greeting_handler(concurrency));
  server.pool_size = 2;
  server.queue_size = 1;
  Serving serving(server);
  PeakSampler active(server.stats.active);
  std::vector<Socket> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(connect_to(server.server_address));
  ASSERT_TRUE(greeted(clients[0], 5s));
  ASSERT_TRUE(greeted(clients[1], 5s));
  EXPECT_TRUE(eventually([&] { return server.stats.accepted.load() == 3; }));
  EXPECT_FALSE(greeted(clients[2], 300ms)) << "the queued request ran without a free worker";
  EXPECT_EQ(server.stats.accepted.load(), 3u) << "accepted past the queue";
  release(clients[0]);
  EXPECT_TRUE(greeted(clients[2], 5s));
  EXPECT_TRUE(eventually([&] { return server.stats.accepted.load() == 4; }));
  EXPECT_FALSE(greeted(clients[3], 200ms));
  release(clients[1]);
  EXPECT_TRUE(greeted(clients[3], 5s));
  release(clients[2]);
  release(clients[3]);
  EXPECT_TRUE(eventually([&] { return server.stats.active.load() == 0; }));
  EXPECT_EQ(active.stop(), 2u);
  EXPECT_EQ(concurrency.peak.load(), 2);
}

// Python's max_children: at the limit the forking server stops accepting until a child exits.
TEST(MaxConnectionsTest, ForkingServerHonoursMaxChildren) {
  Concurrency unused;  // children count in their own copy
  ForkingTCPServer server(test::loopback4(), greeting_handler(unused));
  server.max_children = 2;
  Serving serving(server);
  std::vector<Socket> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_to(server.server_address));
  ASSERT_TRUE(greeted(clients[0], 5s));
  ASSERT_TRUE(greeted(clients[1], 5s));
  EXPECT_FALSE(greeted(clients[2], 300ms)) << "a third child ran past max_children";
  release(clients[0]);
  EXPECT_TRUE(greeted(clients[2], 5s));
  release(clients[1]);
  release(clients[2]);
}

// ---- Dead-peer detection settings ---------------------------------------------------------------

struct PeerOptions {
  int keepalive = -1, idle = -1, interval = -1, count = -1, user_timeout = -1;
};

PeerOptions options_of(Socket& sock) {
  PeerOptions o;
  o.keepalive = sock.getsockopt(SOL_SOCKET, SO_KEEPALIVE);
  o.idle = sock.getsockopt(IPPROTO_TCP, TCP_KEEPIDLE);
  o.interval = sock.getsockopt(IPPROTO_TCP, TCP_KEEPINTVL);
  o.count = sock.getsockopt(IPPROTO_TCP, TCP_KEEPCNT);
  o.user_timeout = sock.getsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT);
  return o;
}

// What a handler saw on its accepted socket; filled in before the handler replies.
struct Seen {
  std::mutex mutex;
  PeerOptions options;
};

template <class Server>
PeerOptions options_seen_by_handler(Server& server, Seen& seen) {
  Serving serving(server);
  Socket client = connect_to(server.server_address);
  client.sendall("x\n");
  EXPECT_EQ(recv_line(client), "ok\n");
  std::lock_guard lock(seen.mutex);
  return seen.options;
}

RequestHandlerFactory recording_handler(Seen& seen) {
  return handler<StreamRequestHandler>([&seen](StreamRequestHandler& self) {
    self.rfile.readline();
    {
      std::lock_guard lock(seen.mutex);
      seen.options = options_of(self.connection());
    }
    self.wfile.write("ok\n");
  });
}

aio::Task<void> record(aio::Connection conn, Seen& seen) {
  co_await conn.readline();
  {
    std::lock_guard lock(seen.mutex);
    seen.options = options_of(conn.socket());
  }
  co_await conn.sendall("ok\n");
}

aio::ConnectionHandler async_recording_handler(Seen& seen) {
  return [&seen](aio::Connection conn) { return record(std::move(conn), seen); };
}

void expect_defaults(const PeerOptions& o) {
  EXPECT_EQ(o.keepalive, 1);
  EXPECT_EQ(o.idle, 60);
  EXPECT_EQ(o.interval, 10);
  EXPECT_EQ(o.count, 6);
  EXPECT_EQ(o.user_timeout, 60000);
}

TEST(DeadPeerSettingsTest, AcceptedConnectionInheritsDefaultsInSyncServer) {
  Seen seen;
  TCPServer server(test::loopback4(), recording_handler(seen));
  expect_defaults(options_seen_by_handler(server, seen));
}

TEST(DeadPeerSettingsTest, AcceptedConnectionInheritsDefaultsInThreadingServer) {
  Seen seen;
  ThreadingTCPServer server(test::loopback4(), recording_handler(seen));
  expect_defaults(options_seen_by_handler(server, seen));
}

TEST(DeadPeerSettingsTest, AcceptedConnectionInheritsDefaultsInAsyncServer) {
  Seen seen;
  aio::AsyncTCPServer server(test::loopback4(), async_recording_handler(seen));
  server.threads = 1;
  expect_defaults(options_seen_by_handler(server, seen));
}

TEST(DeadPeerSettingsTest, CustomValuesAndOffAreInheritedToo) {
  Seen seen;
  {
    ThreadingTCPServer server(test::loopback4(), recording_handler(seen), false);
    server.keepalive = KeepAlive{5s, 2s, 3};
    server.tcp_user_timeout = 1500ms;
    server.bind_and_activate();
    const auto o = options_seen_by_handler(server, seen);
    EXPECT_EQ(o.keepalive, 1);
    EXPECT_EQ(o.idle, 5);
    EXPECT_EQ(o.interval, 2);
    EXPECT_EQ(o.count, 3);
    EXPECT_EQ(o.user_timeout, 1500);
  }
  {
    aio::AsyncTCPServer server(test::loopback4(), async_recording_handler(seen), false);
    server.threads = 1;
    server.keepalive = std::nullopt;
    server.tcp_user_timeout = std::nullopt;
    server.bind_and_activate();
    const auto o = options_seen_by_handler(server, seen);
    EXPECT_EQ(o.keepalive, 0);
    EXPECT_EQ(o.user_timeout, 0);
  }
}

}  // namespace
}  // namespace sockserv
