// SPDX-License-Identifier: MIT
// aio::Task<T>: results and exceptions through nested co_awaits, long chains without stack growth
// (symmetric transfer), detached tasks (spawn) and their error hook, and to_thread().
#include <sockserv/aio/task.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/timeout.hpp>
#include <sockserv/aio/to_thread.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;

struct CustomError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- Results and exceptions ------------------------------------------------------------------

Task<int> leaf(int x) { co_return x; }

Task<int> middle(int x) {
  const int a = co_await leaf(x);
  const int b = co_await leaf(x + 1);
  co_return a + b;
}

Task<std::string> top(int x) { co_return std::to_string(co_await middle(x)); }

TEST(TaskTest, ValuePropagatesThroughNestedAwaits) {
  EventLoop loop;
  EXPECT_EQ(loop.run_until_complete(top(20)), "41");
}

Task<int> throws_at_depth(int depth) {
  if (depth == 0) throw CustomError("deep");
  co_return co_await throws_at_depth(depth - 1) + 1;
}

TEST(TaskTest, ExceptionPropagatesThroughNestedAwaitsToTheAwaiter) {
  EventLoop loop;
  EXPECT_THROW(loop.run_until_complete(throws_at_depth(5)), CustomError);
  // A caller in the middle of the chain can catch it and go on.
  auto catcher = []() -> Task<int> {
    try {
      co_await throws_at_depth(3);
    } catch (const CustomError& e) {
      EXPECT_STREQ(e.what(), "deep");
      co_return -1;
    }
    co_return 0;
  };
  EXPECT_EQ(loop.run_until_complete(catcher()), -1);
}

TEST(TaskTest, ExceptionAfterASuspensionReachesTheAwaiter) {
  EventLoop loop;
  auto later = []() -> Task<int> {
    co_await sleep(1ms);
    throw CustomError("after sleep");
  };
  auto outer = [&later]() -> Task<std::string> {
    try {
      co_await later();
    } catch (const CustomError& e) {
      co_return e.what();
    }
    co_return "nothing thrown";
  };
  EXPECT_EQ(loop.run_until_complete(outer()), "after sleep");
}

TEST(TaskTest, TaskIsLazyUntilAwaited) {
  EventLoop loop;
  bool started = false;
  auto body = [](bool& flag) -> Task<int> {
    flag = true;
    co_return 1;
  };
  auto task = body(started);
  EXPECT_FALSE(started);
  EXPECT_TRUE(task.valid());
  EXPECT_FALSE(task.done());
  auto awaiting = [](Task<int> t) -> Task<int> { co_return co_await std::move(t); };
  EXPECT_EQ(loop.run_until_complete(awaiting(std::move(task))), 1);
  EXPECT_TRUE(started);
  EXPECT_FALSE(task.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TEST(TaskTest, MoveOnlyResultIsMovedToTheAwaiter) {
  EventLoop loop;
  auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(42); };
  auto outer = [&make]() -> Task<int> {
    auto p = co_await make();
    co_return *p;
  };
  EXPECT_EQ(loop.run_until_complete(outer()), 42);
}

TEST(TaskTest, DestroyingAnUnstartedTaskRunsNothing) {
  bool started = false;
  {
    auto body = [](bool& flag) -> Task<void> {
      flag = true;
      co_return;
    };
    auto task = body(started);
    Task<void> other;
    other = std::move(task);
  }
  EXPECT_FALSE(started);
}

// ---- Long chains -----------------------------------------------------------------------------

Task<long> sum_of_ready_tasks(long n) {
  long total = 0;
  for (long i = 0; i < n; ++i) total += co_await leaf(1);
  co_return total;
}

TEST(TaskTest, HundredThousandSequentialAwaitsOfReadyTasksDoNotGrowTheStack) {
  // Without symmetric transfer each completed child would resume its parent on top of the
  // stack, and this overflows.
  EventLoop loop;
  EXPECT_EQ(loop.run_until_complete(sum_of_ready_tasks(100000)), 100000);
}

Task<long> recursive_depth(long n) {
  if (n == 0) co_return 0;
  co_return co_await recursive_depth(n - 1) + 1;
}

TEST(TaskTest, DeepRecursiveChainCompletesWithoutStackOverflow) {
  EventLoop loop;
  EXPECT_EQ(loop.run_until_complete(recursive_depth(100000)), 100000);
}

// ---- Detached tasks --------------------------------------------------------------------------

TEST(TaskTest, SpawnedTasksRunConcurrentlyAndTheirExceptionsGoToTheHandler) {
  EventLoop loop;
  std::vector<std::string> log;
  std::vector<std::string> errors;
  loop.exception_handler = [&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      errors.emplace_back(ex.what());
    }
  };
  auto worker = [](std::vector<std::string>& out, std::string name, std::chrono::milliseconds delay,
                   bool fail) -> Task<void> {
    out.push_back(name + " start");
    co_await sleep(delay);
    if (fail) throw CustomError(name + " failed");
    out.push_back(name + " end");
  };
  loop.spawn(worker(log, "a", 20ms, false));
  loop.spawn(worker(log, "b", 5ms, true));
  loop.spawn(worker(log, "c", 10ms, false));
  EXPECT_EQ(loop.pending_tasks(), 3U);
  auto finish = [](EventLoop& l) -> Task<void> {
    const auto deadline = Clock::now() + 5s;
    while (l.pending_tasks() > 1 && Clock::now() < deadline) co_await sleep(1ms);
  };
  loop.run_until_complete(finish(loop));
  EXPECT_EQ(log, (std::vector<std::string>{"a start", "b start", "c start", "c end", "a end"}));
  EXPECT_EQ(errors, (std::vector<std::string>{"b failed"}));
  EXPECT_EQ(loop.pending_tasks(), 0U);
}

TEST(TaskTest, FreeSpawnUsesTheLoopOfTheCallingThread) {
  EventLoop loop;
  int ran = 0;
  auto child = [](int& n) -> Task<void> {
    ++n;
    co_return;
  };
  auto parent = [&child](int& n) -> Task<void> {
    spawn(child(n));
    spawn(child(n));
    co_await sleep(1ms);
  };
  loop.run_until_complete(parent(ran));
  EXPECT_EQ(ran, 2);
}

// ---- to_thread -------------------------------------------------------------------------------

TEST(ToThreadTest, ReturnsTheFunctionValueComputedOnAnotherThread) {
  EventLoop loop;
  const auto loop_thread = std::this_thread::get_id();
  auto task = [](std::thread::id me) -> Task<int> {
    const auto where = co_await to_thread([] { return std::this_thread::get_id(); });
    EXPECT_NE(where, me);
    co_return co_await to_thread([] { return 6 * 7; });
  };
  EXPECT_EQ(loop.run_until_complete(task(loop_thread)), 42);
}

TEST(ToThreadTest, FunctionExceptionReachesTheAwaitingCoroutine) {
  EventLoop loop;
  auto task = []() -> Task<void> { co_await to_thread([] { throw CustomError("in a worker"); }); };
  EXPECT_THROW(loop.run_until_complete(task()), CustomError);
}

TEST(ToThreadTest, ManyConcurrentCallsAllComplete) {
  constexpr int calls = 500;
  EventLoop loop;
  std::atomic<int> ran{0};
  long total = 0;
  int finished = 0;
  auto one = [](int i, std::atomic<int>& r, long& sum, int& done) -> Task<void> {
    sum += co_await to_thread([i, &r] {
      ++r;
      return static_cast<long>(i);
    });
    ++done;
  };
  for (int i = 0; i < calls; ++i) loop.spawn(one(i, ran, total, finished));
  auto wait_all = [](int& done, EventLoop& l) -> Task<void> {
    const auto deadline = Clock::now() + 20s;
    while (done < calls && Clock::now() < deadline) co_await sleep(1ms);
    EXPECT_EQ(l.pending_tasks(), 1U);
  };
  loop.run_until_complete(wait_all(finished, loop));
  EXPECT_EQ(ran.load(), calls);
  EXPECT_EQ(finished, calls);
  EXPECT_EQ(total, static_cast<long>(calls) * (calls - 1) / 2);
}

TEST(ToThreadTest, LoopMayBeDestroyedAsSoonAsTheAwaitingTaskEnds) {
  // The worker's hand-back must be over once the loop can see it: destroying the loop right
  // after run_until_complete() returns must not race with the worker (ASan/TSan watch this).
  for (int i = 0; i < 200; ++i) {
    auto loop = std::make_unique<EventLoop>();
    auto task = []() -> Task<int> { co_return co_await to_thread([] { return 1; }); };
    ASSERT_EQ(loop->run_until_complete(task()), 1);
    loop.reset();
  }
}

TEST(ToThreadTest, LoopKeepsServingWhileAFunctionBlocks) {
  // The worker blocks until the loop has run 10 timer ticks: only possible if the loop is free.
  EventLoop loop;
  std::promise<void> release;
  auto released = release.get_future();
  int ticks = 0;
  auto blocker = [](std::future<void>& gate) -> Task<bool> {
    co_return co_await to_thread(
        [&gate] { return gate.wait_for(10s) == std::future_status::ready; });
  };
  auto ticker = [](int& n, std::promise<void>& gate) -> Task<void> {
    for (; n < 10; ++n) co_await sleep(1ms);
    gate.set_value();
  };
  loop.spawn(ticker(ticks, release));
  EXPECT_TRUE(loop.run_until_complete(blocker(released)));
  EXPECT_EQ(ticks, 10);
}

}  // namespace
}  // namespace sockserv::aio
