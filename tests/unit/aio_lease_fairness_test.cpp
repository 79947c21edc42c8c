// SPDX-License-Identifier: MIT
// Issue 10's zero-copy, fair async path: recv_lease() lends pooled buffers (no allocation per
// message once warm: counted with a replaced operator new), sendall(BufferLease) sends from them,
// and the loop's cooperative budget bounds how much of a greedy connection's stream is served
// between another connection's request and its reply (counted in bytes, never timed).
#include <sockserv/aio/buffer_lease.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/connection.hpp>
#include <sockserv/aio/event_loop.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {
// Allocations made by the thread that set `counting` (the loop thread), while it is set.
thread_local bool counting = false;
std::atomic<long> counted_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (counting) counted_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;

TEST(BufferLeaseTest, ConsumesMovesAndGivesBack) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  peer.sendall("hello world");
  peer.shutdown(SHUT_WR);
  auto body = [](Socket sock) -> Task<std::vector<std::string>> {
    Connection conn(std::move(sock));
    std::vector<std::string> seen;
    BufferLease lease = co_await conn.recv_lease();
    seen.push_back(lease.str());
    lease.remove_prefix(6);
    seen.push_back(std::string(lease.view()));
    BufferLease moved = std::move(lease);
    seen.push_back(std::to_string(lease.size()) + "/" + std::to_string(moved.size()));
    moved.remove_prefix(100);  // past the end: empty, not undefined
    seen.push_back(std::to_string(moved.size()));
    moved.reset();
    const BufferLease eof = co_await conn.recv_lease();
    seen.push_back(eof.empty() ? "eof" : eof.str());
    co_return seen;
  };
  const auto seen = loop.run_until_complete(body(std::move(mine)));
  EXPECT_EQ(seen, (std::vector<std::string>{"hello world", "world", "0/5", "0", "eof"}));
}

TEST(BufferLeaseTest, BytesBufferedByReadlineComeFirst) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  peer.sendall("line\nrest");
  peer.shutdown(SHUT_WR);
  auto body = [](Socket sock) -> Task<std::string> {
    Connection conn(std::move(sock));
    std::string out = co_await conn.readline();
    for (;;) {
      BufferLease lease = co_await conn.recv_lease(2);  // at most 2 bytes each
      if (lease.empty()) break;
      EXPECT_LE(lease.size(), 2U);
      out += "|" + lease.str();
    }
    co_return out;
  };
  EXPECT_EQ(loop.run_until_complete(body(std::move(mine))), "line\n|re|st");
}

TEST(BufferLeaseTest, ALeaseDroppedOnAnotherThreadIsFine) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  peer.sendall("x");
  auto body = [](Socket sock) -> Task<BufferLease> {
    Connection conn(std::move(sock));
    co_return co_await conn.recv_lease();
  };
  BufferLease lease = loop.run_until_complete(body(std::move(mine)));
  std::thread([l = std::move(lease)]() mutable {
    EXPECT_EQ(l.view(), "x");
    l.reset();  // joins that thread's pool, freed when the thread ends
  }).join();
}

TEST(BufferLeaseTest, SendallTakesSpansAndVectors) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  auto body = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    const std::vector<char> bytes{'a', 'b'};
    co_await conn.sendall(bytes);
    char more[] = {'c', 'd'};
    co_await conn.sendall(std::span<char>(more));
  };
  loop.run_until_complete(body(std::move(mine)));
  EXPECT_EQ(peer.recv_exact(4), "abcd");
}

TEST(BufferLeaseTest, AnEchoAllocatesNothingPerMessageOnceWarm) {
  auto [mine, peer] = test::tcp_pair();
  constexpr int warm_up = 50;
  constexpr int measured = 2000;
  std::thread client([&peer = peer] {
    for (int i = 0; i < warm_up + measured; ++i) {
      peer.sendall("0123456789abcdef");
      if (peer.recv_exact(16) != "0123456789abcdef") return;
    }
    peer.shutdown(SHUT_WR);
  });
  EventLoop loop;
  auto echo = [](Socket sock) -> Task<long> {
    Connection conn(std::move(sock));
    long allocations = 0;
    for (int n = 0;; ++n) {
      if (n == warm_up) {
        counted_allocations = 0;
        counting = true;
      }
      BufferLease data = co_await conn.recv_lease();
      if (data.empty()) break;
      co_await conn.sendall(std::move(data));
    }
    counting = false;
    allocations = counted_allocations.load();
    co_return allocations;
  };
  const long allocations = loop.run_until_complete(echo(std::move(mine)));
  client.join();
  // Nothing per message: a few at most for the loop's own vectors growing once.
  EXPECT_LE(allocations, 4) << "over " << measured << " messages";
}

// ---- Fairness -------------------------------------------------------------------------------

// A greedy connection: its handler sends one byte at a time, which the kernel always takes at
// once (a reader thread drains the other end far faster), so without a budget it would never
// return to the loop. A second connection asks for one echo. The greedy operations between the
// request reaching the kernel and the echo handler running must stay within a few budgets;
// without the budget the echo waits for the whole greedy stream (bounded: 2,000,000 sends).
TEST(FairnessTest, AGreedyConnectionYieldsWithinItsBudget) {
  constexpr std::size_t stream_limit = 2'000'000;
  auto [greedy_server, greedy_client] = test::tcp_pair();
  auto [echo_server, echo_client] = test::tcp_pair();
  std::atomic<std::size_t> sent{0};  // greedy operations so far
  std::atomic<bool> done{false};

  std::thread reader([&c = greedy_client, &done] {
    std::vector<char> sink(1 << 20);
    while (!done && c.recv_into(sink) > 0) {
    }
  });
  // Counted from just after the request is in the kernel (the asker's own scheduling can only
  // make it smaller) to the moment the echo handler runs (on the loop's thread: exact).
  std::atomic<std::size_t> at_echo{0};
  std::size_t during = 0;
  bool answered = false;
  std::thread asker([&] {
    while (sent < 10'000) std::this_thread::yield();  // the stream is going
    echo_client.sendall("?");
    const auto before = sent.load();
    answered = echo_client.recv(1) == "?";
    during = at_echo > before ? at_echo - before : 0;
    done = true;
  });

  EventLoop loop;
  const auto budget = loop.fairness_budget();
  auto greedy = [&](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    while (!done && sent < stream_limit) {
      co_await conn.sendall("g");
      ++sent;
    }
  };
  auto echo = [&](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    BufferLease request = co_await conn.recv_lease();
    at_echo = sent.load();
    co_await conn.sendall(std::move(request));
  };
  loop.spawn(greedy(std::move(greedy_server)));
  loop.run_until_complete(echo(std::move(echo_server)));
  asker.join();
  done = true;
  greedy_client.shutdown(SHUT_RDWR);
  reader.join();

  EXPECT_TRUE(answered);
  // The greedy slice that was running, the one queued before the echo's readiness was seen,
  // and slack: four budgets.
  EXPECT_LE(during, 4 * std::size_t{budget.operations})
      << "the greedy connection made " << during << " sends between the request and the echo";
}

TEST(FairnessTest, TheBudgetCountsOperationsToo) {
  // With a budget of one operation, every second operation that could complete at once yields:
  // two coroutines that each send eight one-byte messages interleave instead of running in turn.
  auto [a_server, a_client] = socketpair();
  auto [b_server, b_client] = socketpair();
  EventLoop loop;
  loop.set_fairness_budget({.operations = 1, .bytes = std::size_t{1} << 30});
  std::string order;
  auto talker = [&order](Socket sock, char name) -> Task<void> {
    Connection conn(std::move(sock));
    for (int i = 0; i < 8; ++i) {
      co_await conn.sendall(std::string_view(&name, 1));
      order += name;
    }
  };
  loop.spawn(talker(std::move(a_server), 'a'));
  loop.run_until_complete(talker(std::move(b_server), 'b'));
  EXPECT_EQ(a_client.recv_exact(8), "aaaaaaaa");
  EXPECT_EQ(b_client.recv_exact(8), "bbbbbbbb");
  EXPECT_NE(order.find("ab"), std::string::npos) << order;
  EXPECT_LE(order.find('b'), 2U) << "b waited for all of a: " << order;
}

}  // namespace
}  // namespace sockserv::aio
