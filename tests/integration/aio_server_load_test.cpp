// SPDX-License-Identifier: MIT
// The event-loop server under load: 1,000 clients connected at once (non-blocking connects
// driven by one Selector), each getting its own line echoed; and slow readers, which must make
// their handlers wait rather than make the server buffer what they do not read.
#include <sockserv/aio/server.hpp>  // Test that header file is self-contained.

#include <sockserv/selector.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include "support/aio_serving.hpp"

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <any>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

using test::eventually;
using test::Serving;

long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Raises the soft descriptor limit to the hard one for the test's lifetime; false when even the
// hard limit is below `needed`.
class DescriptorLimit {
 public:
  explicit DescriptorLimit(rlim_t needed) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    if (saved_.rlim_max != RLIM_INFINITY && saved_.rlim_max < needed) return;
    rlimit raised = saved_;
    raised.rlim_cur = saved_.rlim_max;
    ok_ = ::setrlimit(RLIMIT_NOFILE, &raised) == 0;
  }
  ~DescriptorLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  DescriptorLimit(const DescriptorLimit&) = delete;
  DescriptorLimit& operator=(const DescriptorLimit&) = delete;
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

Task<void> echo_lines(Connection conn) {
  for (std::string line; !(line = co_await conn.readline()).empty();) co_await conn.sendall(line);
}

struct Client {
  Socket sock;
  std::string line;
  std::string got;
  bool sent = false;
  bool done = false;
};

// Drives `clients` through connect → send → receive-the-echo with one Selector; returns how many
// got their whole line back before `limit`. Connections stay open: all of them at once.
int run_clients(std::vector<Client>& clients, const Address& address, std::chrono::seconds limit) {
  Selector selector;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    auto& c = clients[i];
    c.sock = Socket(address.family(), SOCK_STREAM);
    c.sock.setblocking(false);
    c.line = "client " + std::to_string(i) + " says hello\n";
    const int rc = c.sock.connect_ex(address);
    EXPECT_TRUE(rc == 0 || rc == EINPROGRESS) << "connect: " << rc;
    selector.register_(c.sock.fileno(), EVENT_WRITE, i);
  }
  int done = 0;
  const auto deadline = SteadyClock::now() + limit;
  while (done < static_cast<int>(clients.size()) && SteadyClock::now() < deadline) {
    for (const auto& [key, events] : selector.select(100ms)) {
      auto& c = clients[std::any_cast<std::size_t>(key->data)];
      if (!c.sent && (events & EVENT_WRITE)) {
        if (const auto ec = c.sock.get_error()) {
          ADD_FAILURE() << "connect failed: " << ec.message();
          return done;
        }
        EXPECT_EQ(c.sock.send(c.line), c.line.size());  // a short line fits the empty buffer
        c.sent = true;
        selector.modify(c.sock.fileno(), EVENT_READ, key->data);
      } else if (c.sent && (events & EVENT_READ)) {
        const int fd = c.sock.fileno();
        c.got += c.sock.recv(4096);
        if (c.got.size() >= c.line.size()) {
          EXPECT_EQ(c.got, c.line);
          c.done = true;
          ++done;
          selector.unregister(fd);
        }
      }
    }
  }
  return done;
}

TEST(AsyncServerLoadTest, ThousandConcurrentClientsEachGetTheirEcho) {
  constexpr int clients = 1000;
  DescriptorLimit limit(2500);
  if (!limit.ok()) GTEST_SKIP() << "RLIMIT_NOFILE hard limit below 2500";
  AsyncTCPServer server(test::loopback4(), echo_lines);
  server.threads = 2;
  Serving serving(server);
  std::vector<Client> all(clients);
  EXPECT_EQ(run_clients(all, server.server_address, 30s), clients);
  // Every client still holds its connection: the server has all of them open at once.
  EXPECT_TRUE(eventually([&] { return server.active_tasks() == clients; }));
  all.clear();  // the clients close; each handler reads EOF and ends
  EXPECT_TRUE(eventually([&] { return server.active_tasks() == 0; }, 20s));
}

// ---- Slow readers ----------------------------------------------------------------------------

constexpr std::size_t chunk_size = 64 << 10;
constexpr std::size_t per_client = 4 << 20;

// One shared chunk: the handlers send views of it, so any per-connection copy would show in RSS.
const std::string& chunk() {
  static const std::string data = [] {
    std::string s(chunk_size, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
  }();
  return data;
}

// True when `got` is what the handlers send from stream position `offset` on.
bool matches_stream(std::string_view got, std::size_t offset) {
  const std::string_view c = chunk();
  while (!got.empty()) {
    const std::size_t at = offset % c.size();
    const std::size_t len = std::min(got.size(), c.size() - at);
    if (got.substr(0, len) != c.substr(at, len)) return false;
    got.remove_prefix(len);
    offset += len;
  }
  return true;
}

struct Progress {
  std::atomic<std::size_t> sent{0};  // bytes the kernel took, over all handlers
};

TEST(AsyncServerLoadTest, SlowReadersMakeHandlersWaitInsteadOfTheServerBuffering) {
  constexpr int clients = 20;
  Progress progress;
  AsyncTCPServer server(test::loopback4(), [&progress](Connection conn) -> Task<void> {
    // Small kernel buffers on both ends, so what may legitimately be in flight is small.
    conn.socket().set_send_buffer_size(64 << 10);
    for (std::size_t n = 0; n < per_client; n += chunk_size) {
      co_await conn.sendall(chunk());
      progress.sent += chunk_size;
    }
  });
  server.threads = 2;
  Serving serving(server);
  std::vector<Socket> socks;
  for (int i = 0; i < clients; ++i) {
    Socket s(AF_INET, SOCK_STREAM);
    s.set_recv_buffer_size(64 << 10);  // a slow reader with a small window
    s.settimeout(10s);
    s.connect(server.server_address);
    socks.push_back(std::move(s));
  }
  ASSERT_TRUE(eventually([&] { return server.active_tasks() == clients; }));
  const long rss_start = rss_kib();

  // Nobody reads. Watch for 200 ms: the handlers can only get as far as the kernel's buffers
  // let them (well under 1 MiB per connection here), far from the whole stream.
  const auto watch_end = SteadyClock::now() + 200ms;
  while (SteadyClock::now() < watch_end) {
    ASSERT_LT(progress.sent.load(), clients * (std::size_t{1} << 20))
        << "handlers ran ahead of readers";
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_LT(rss_kib() - rss_start, 32 * 1024) << "the server buffered what nobody read";

  // Now read it all, a little from each client in turn.
  std::vector<std::size_t> got(clients, 0);
  std::string buf(16384, '\0');
  bool intact = true;
  const auto deadline = SteadyClock::now() + 30s;
  for (bool more = true; more && SteadyClock::now() < deadline;) {
    more = false;
    for (int i = 0; i < clients; ++i) {
      auto& n = got[static_cast<std::size_t>(i)];
      if (n >= per_client) continue;
      more = true;
      const std::size_t k = socks[static_cast<std::size_t>(i)].recv_into(buf);
      if (k == 0) {
        n = per_client + 1;  // EOF too early: counted as a failure below
        continue;
      }
      intact = intact && matches_stream(std::string_view(buf).substr(0, k), n);
      n += k;
    }
  }
  for (int i = 0; i < clients; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], per_client);
  EXPECT_TRUE(intact);
  // The reader can drain the last chunks from the kernel before their handler is resumed to
  // count them, so the count catches up shortly after.
  EXPECT_TRUE(eventually([&] { return progress.sent.load() == clients * per_client; }))
      << progress.sent.load() << " of " << clients * per_client << " bytes counted";
  EXPECT_TRUE(eventually([&] { return server.active_tasks() == 0; }));
}

}  // namespace
}  // namespace sockserv::aio
