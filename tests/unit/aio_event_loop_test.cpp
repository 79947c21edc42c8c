// SPDX-License-Identifier: MIT
// aio::EventLoop: scheduling (call_soon, call_later, call_soon_threadsafe), readiness callbacks
// (add_reader / add_writer) on a socketpair, running and stopping, the exception handler, one loop
// per thread, and what a destroyed loop does with the tasks and timers it still holds.
#include <sockserv/aio/event_loop.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/connection.hpp>
#include <sockserv/aio/timeout.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;

// Runs one iteration of `loop`: what is ready runs, then run_forever() returns.
void run_one_iteration(EventLoop& loop) {
  loop.call_soon([&loop] { loop.stop(); });
  loop.run_forever();
}

// Stops `loop` after `limit` at the latest, so a test that waits for an event cannot hang.
TimerHandle watchdog(EventLoop& loop, std::chrono::milliseconds limit = 5s) {
  return loop.call_later(limit, [&loop] {
    ADD_FAILURE() << "watchdog: the loop was still running after the limit";
    loop.stop();
  });
}

// ---- call_soon and call_later ----------------------------------------------------------------

TEST(EventLoopTest, CallSoonRunsCallbacksInOrder) {
  EventLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop.call_soon([&order, i] { order.push_back(i); });
  run_one_iteration(loop);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(EventLoopTest, CallSoonFromACallbackRunsInTheNextIteration) {
  EventLoop loop;
  std::vector<std::string> order;
  loop.call_soon([&] {
    order.push_back("a");
    loop.call_soon([&] { order.push_back("c"); });
  });
  loop.call_soon([&] { order.push_back("b"); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));  // stop() ended the iteration first
  run_one_iteration(loop);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(EventLoopTest, CallLaterRunsInDeadlineOrder) {
  EventLoop loop;
  std::vector<int> order;
  const auto start = Clock::now();
  loop.call_later(30ms, [&] { order.push_back(30); });
  loop.call_later(10ms, [&] { order.push_back(10); });
  loop.call_later(20ms, [&] { order.push_back(20); });
  // Equal deadlines run in the order they were scheduled.
  const auto when = start + 40ms;
  for (int i = 41; i <= 43; ++i) loop.call_at(when, [&order, i] { order.push_back(i); });
  loop.call_later(50ms, [&] { loop.stop(); });
  auto guard = watchdog(loop);
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30, 41, 42, 43}));
  EXPECT_GE(Clock::now() - start, 50ms);
}

TEST(EventLoopTest, TimerHandleCancelPreventsTheCallback) {
  EventLoop loop;
  bool ran = false;
  auto handle = loop.call_later(10ms, [&] { ran = true; });
  EXPECT_TRUE(handle.active());
  handle.cancel();
  EXPECT_FALSE(handle.active());
  handle.cancel();  // a second cancel is harmless
  loop.call_later(30ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_FALSE(ran);
  EXPECT_EQ(loop.pending_timers(), 0U);
  TimerHandle empty;
  empty.cancel();  // a default-constructed handle is inert
  EXPECT_FALSE(empty.active());
}

TEST(EventLoopTest, TimerCancelledByAnEarlierTimerOfTheSameIterationDoesNotRun) {
  // Both deadlines pass before the loop looks at its timers, so both fire in one iteration; the
  // first one's cancel() of the second comes after the second fired but before it ran.
  EventLoop loop;
  const auto when = Clock::now() + 5ms;
  bool second_ran = false;
  TimerHandle second;
  loop.call_at(when, [&] { second.cancel(); });
  second = loop.call_at(when, [&] { second_ran = true; });
  loop.call_at(when + 20ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_FALSE(second_ran) << "cancel() before the callback ran must prevent it";
}

TEST(EventLoopTest, TimerHandleIsInactiveAfterItsCallbackRan) {
  EventLoop loop;
  int runs = 0;
  auto handle = loop.call_later(1ms, [&] {
    ++runs;
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(handle.active());
  handle.cancel();  // too late: harmless
}

// ---- call_soon_threadsafe and stop_threadsafe ------------------------------------------------

TEST(EventLoopTest, CallSoonThreadsafeFromManyThreadsRunsEveryCallbackExactlyOnce) {
  constexpr int threads = 8;
  constexpr int per_thread = 5000;
  EventLoop loop;
  long count = 0;  // only the loop thread touches it
  std::vector<std::thread> posters;
  std::atomic<bool> go{false};
  for (int t = 0; t < threads; ++t) {
    posters.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < per_thread; ++i) {
        loop.call_soon_threadsafe([&] {
          if (++count == threads * per_thread) loop.stop();
        });
      }
    });
  }
  go = true;
  auto guard = watchdog(loop, 20s);
  loop.run_forever();
  for (auto& t : posters) t.join();
  run_one_iteration(loop);  // anything queued late (there must be nothing) would run now
  EXPECT_EQ(count, threads * per_thread);
}

TEST(EventLoopTest, StopThreadsafeEndsRunForeverFromAnotherThread) {
  EventLoop loop;
  std::atomic<bool> running{false};
  loop.call_soon([&] { running = true; });
  std::thread stopper([&] {
    const auto deadline = Clock::now() + 5s;
    while (!running.load() && Clock::now() < deadline) std::this_thread::yield();
    loop.stop_threadsafe();
  });
  auto guard = watchdog(loop);
  loop.run_forever();
  stopper.join();
  EXPECT_TRUE(running.load());
  EXPECT_FALSE(loop.is_running());
}

TEST(EventLoopTest, StopFromACallbackEndsRunForeverAndTheLoopCanRunAgain) {
  EventLoop loop;
  int iterations = 0;
  loop.call_soon([&] {
    EXPECT_TRUE(loop.is_running());
    EXPECT_EQ(EventLoop::current(), &loop);
    ++iterations;
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(EventLoop::current(), nullptr);
  loop.call_soon([&] { ++iterations; });
  run_one_iteration(loop);
  EXPECT_EQ(iterations, 2);
}

// ---- Readiness callbacks ---------------------------------------------------------------------

TEST(EventLoopTest, AddReaderIsCalledAgainWhileTheDescriptorStaysReadable) {
  EventLoop loop;
  auto [a, b] = socketpair();
  b.sendall("x");
  int calls = 0;
  loop.add_reader(a.fileno(), [&] {
    // Level semantics: nothing is read, so the next iteration reports it again.
    if (++calls == 3) loop.stop();
  });
  auto guard = watchdog(loop);
  loop.run_forever();
  EXPECT_EQ(calls, 3);
  EXPECT_TRUE(loop.remove_reader(a.fileno()));
  EXPECT_FALSE(loop.remove_reader(a.fileno()));
}

TEST(EventLoopTest, AddReaderStopsBeingCalledOnceTheDataIsRead) {
  EventLoop loop;
  auto [a, b] = socketpair();
  a.setblocking(false);
  int calls = 0;
  std::string got;
  loop.add_reader(a.fileno(), [&, &sock = a] {
    ++calls;
    got += sock.recv(100);
  });
  loop.call_soon([&, &peer = b] { peer.sendall("hello"); });
  loop.call_later(50ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(loop.remove_reader(a.fileno()));
}

TEST(EventLoopTest, RemoveReaderFromItsOwnCallbackStopsFurtherCalls) {
  EventLoop loop;
  auto [a, b] = socketpair();
  b.sendall("x");
  int calls = 0;
  loop.add_reader(a.fileno(), [&, fd = a.fileno()] {
    ++calls;
    EXPECT_TRUE(loop.remove_reader(fd));
  });
  loop.call_later(30ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(loop.remove_writer(a.fileno()));
}

TEST(EventLoopTest, AddWriterIsCalledWhileWritableUntilRemoved) {
  EventLoop loop;
  auto [a, b] = socketpair();
  int calls = 0;
  loop.add_writer(a.fileno(), [&, fd = a.fileno()] {
    if (++calls == 2) {
      EXPECT_TRUE(loop.remove_writer(fd));
    }
  });
  loop.call_later(30ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(loop.remove_writer(a.fileno()));
}

TEST(EventLoopTest, AddReaderAndAddWriterOnOneDescriptorBothRun) {
  EventLoop loop;
  auto [a, b] = socketpair();
  b.sendall("x");
  int reads = 0;
  int writes = 0;
  loop.add_reader(a.fileno(), [&] { ++reads; });
  loop.add_writer(a.fileno(), [&] { ++writes; });
  loop.call_later(20ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_GT(reads, 0) << "add_writer() must not drop the reader of the same descriptor";
  EXPECT_GT(writes, 0);
  // Removing one direction leaves the other registered.
  EXPECT_TRUE(loop.remove_writer(a.fileno()));
  reads = 0;
  writes = 0;
  loop.call_later(20ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_GT(reads, 0);
  EXPECT_EQ(writes, 0);
  EXPECT_TRUE(loop.remove_reader(a.fileno()));
}

// ---- run_until_complete ----------------------------------------------------------------------

Task<int> add_later(int a, int b) {
  co_await sleep(1ms);
  co_return a + b;
}

struct CustomError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Task<int> fail_later() {
  co_await sleep(1ms);
  throw CustomError("boom");
}

TEST(EventLoopTest, RunUntilCompleteReturnsTheTaskValue) {
  EventLoop loop;
  EXPECT_EQ(loop.run_until_complete(add_later(2, 3)), 5);
  EXPECT_EQ(loop.run_until_complete(add_later(4, 5)), 9);  // the loop is reusable
  EXPECT_EQ(loop.pending_tasks(), 0U);
}

TEST(EventLoopTest, RunUntilCompleteRethrowsTheTaskException) {
  EventLoop loop;
  EXPECT_THROW(loop.run_until_complete(fail_later()), CustomError);
  EXPECT_EQ(loop.pending_tasks(), 0U);
  auto void_task = []() -> Task<void> {
    co_await sleep(1ms);
    throw CustomError("void");
  };
  EXPECT_THROW(loop.run_until_complete(void_task()), CustomError);
}

TEST(EventLoopTest, RunUntilCompleteStoppedEarlyThrowsAndTheTaskCannotStopALaterRun) {
  EventLoop loop;
  loop.call_soon([&] { loop.stop(); });
  EXPECT_THROW(loop.run_until_complete(add_later(1, 1)), std::logic_error);
  // The abandoned task finishes during this run; it must neither touch the first call's (gone)
  // result nor stop this run early.
  auto slower = []() -> Task<int> {
    co_await sleep(30ms);
    co_return 7;
  };
  EXPECT_EQ(loop.run_until_complete(slower()), 7);
}

// ---- Errors ----------------------------------------------------------------------------------

TEST(EventLoopTest, CallbackExceptionGoesToTheExceptionHandlerAndTheLoopGoesOn) {
  EventLoop loop;
  std::vector<std::string> reported;
  loop.exception_handler = [&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      reported.emplace_back(ex.what());
    }
  };
  bool after = false;
  loop.call_soon([] { throw std::runtime_error("first"); });
  loop.call_soon([&] { after = true; });
  loop.call_later(1ms, [] { throw std::runtime_error("second"); });
  loop.call_later(10ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_TRUE(after);
  EXPECT_EQ(reported, (std::vector<std::string>{"first", "second"}));
}

TEST(EventLoopTest, SecondLoopOnTheSameThreadThrowsLogicError) {
  EventLoop outer;
  EventLoop inner;
  bool threw = false;
  outer.call_soon([&] {
    try {
      inner.run_forever();
    } catch (const std::logic_error&) {
      threw = true;
    }
    EXPECT_THROW((void)inner.run_until_complete(add_later(1, 2)), std::logic_error);
    outer.stop();
  });
  outer.run_forever();
  EXPECT_TRUE(threw);
  EXPECT_EQ(EventLoop::current(), nullptr);
  // Each loop still works on its own afterwards.
  EXPECT_EQ(inner.run_until_complete(add_later(1, 2)), 3);
}

// ---- Destruction -----------------------------------------------------------------------------

// Sets *flag when destroyed: shows that a coroutine frame was destroyed (its locals unwound).
struct SetOnDestroy {
  bool* flag;
  ~SetOnDestroy() { *flag = true; }
};

Task<void> sleep_forever(bool* destroyed) {
  SetOnDestroy guard{destroyed};
  co_await sleep(1h);
}

TEST(EventLoopTest, SpawnOutsideALoopThrowsLogicError) {
  bool destroyed = false;
  EXPECT_THROW(spawn(sleep_forever(&destroyed)), std::logic_error);
  EXPECT_FALSE(destroyed);  // it never started
}

Task<void> read_forever(Socket sock, bool* destroyed) {
  SetOnDestroy guard{destroyed};
  Connection conn(std::move(sock));
  (void)co_await conn.recv();
  ADD_FAILURE() << "the peer never writes";
}

TEST(EventLoopTest, DestroyingTheLoopDestroysPendingTasksAndClosesTheirSockets) {
  const auto fds_before = test::count_open_fds();
  bool sleeper_destroyed = false;
  bool reader_destroyed = false;
  auto [mine, peer] = socketpair();
  {
    EventLoop loop;
    loop.spawn(sleep_forever(&sleeper_destroyed));
    loop.spawn(read_forever(std::move(mine), &reader_destroyed));
    run_one_iteration(loop);  // both start and suspend
    EXPECT_EQ(loop.pending_tasks(), 2U);
    EXPECT_FALSE(sleeper_destroyed);
    EXPECT_FALSE(reader_destroyed);
  }
  EXPECT_TRUE(sleeper_destroyed);
  EXPECT_TRUE(reader_destroyed);
  peer.settimeout(5s);
  EXPECT_EQ(peer.recv(10), "");  // the task's socket was closed: the peer reads EOF
  peer.close();
  EXPECT_EQ(test::count_open_fds(), fds_before);
}

TEST(EventLoopTest, DestroyingTheLoopFreesTimersThatNeverFired) {
  auto token = std::make_shared<int>(0);
  {
    EventLoop loop;
    auto handle = loop.call_later(1h, [token] {});
    loop.call_later(2h, [token] {});  // handle dropped at once
    EXPECT_EQ(token.use_count(), 3);
  }
  EXPECT_EQ(token.use_count(), 1) << "the loop must free its pending callbacks (no leak)";
}

TEST(EventLoopTest, DestroyingTheLoopFreesQueuedCallbacks) {
  auto token = std::make_shared<int>(0);
  {
    EventLoop loop;
    loop.call_soon([token] {});
    loop.call_soon_threadsafe([token] {});
  }
  EXPECT_EQ(token.use_count(), 1);
}

}  // namespace
}  // namespace sockserv::aio
