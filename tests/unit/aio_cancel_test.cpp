// SPDX-License-Identifier: MIT
// Time and cancellation in sockserv::aio: CancelState::cancel() on a task suspended in sleep,
// recv, Event::wait or with_timeout; with_timeout() expiring, completing, nested and cancelled
// from outside; sleep() lower bounds; aio::Event.
#include <sockserv/aio/timeout.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/connection.hpp>
#include <sockserv/aio/event.hpp>
#include <sockserv/aio/event_loop.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <system_error>
#include <vector>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;

// Sets *flag when destroyed: shows that the coroutine unwound through its locals.
struct SetOnDestroy {
  bool* flag;
  ~SetOnDestroy() { *flag = true; }
};

// How a task ended: the code of the std::system_error it threw (empty: it returned normally).
struct Ending {
  bool finished = false;
  std::error_code code;
  bool timeout_error = false;  // the exception was a TimeoutError
};

Task<void> record_ending(Task<void> task, Ending& ending, EventLoop& loop) {
  try {
    co_await std::move(task);
  } catch (const TimeoutError& e) {
    ending.code = e.code();
    ending.timeout_error = true;
  } catch (const std::system_error& e) {
    ending.code = e.code();
  }
  ending.finished = true;
  loop.stop();
}

// Runs `task` as a detached chain whose CancelState is cancelled after `delay`; returns how the
// task ended. A 5 s watchdog keeps a task that ignores the cancellation from hanging the test.
Ending run_and_cancel(Task<void> task, std::chrono::milliseconds delay) {
  EventLoop loop;
  CancelState cancel;
  Ending ending;
  loop.spawn(record_ending(std::move(task), ending, loop), &cancel);
  loop.call_later(delay, [&cancel] { cancel.cancel(); });
  loop.call_later(5s, [&loop] { loop.stop(); });
  loop.run_forever();
  return ending;
}

// Runs `task` to its end (5 s at most) without cancelling it.
Ending run_to_end(Task<void> task) { return run_and_cancel(std::move(task), 1h); }

const auto canceled = std::make_error_code(std::errc::operation_canceled);
const auto timed_out = std::make_error_code(std::errc::timed_out);

// ---- Cancellation ----------------------------------------------------------------------------

TEST(CancelTest, CancelInterruptsSleepAndUnwindsTheTask) {
  bool unwound = false;
  auto task = [](bool& flag) -> Task<void> {
    SetOnDestroy guard{&flag};
    co_await sleep(1h);
  };
  const auto start = Clock::now();
  const auto ending = run_and_cancel(task(unwound), 10ms);
  EXPECT_TRUE(ending.finished);
  EXPECT_EQ(ending.code, canceled);
  EXPECT_TRUE(unwound);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(CancelTest, CancelInterruptsRecvAndUnwindsTheTask) {
  auto [mine, peer] = socketpair();
  bool unwound = false;
  auto task = [](Socket sock, bool& flag) -> Task<void> {
    SetOnDestroy guard{&flag};
    Connection conn(std::move(sock));
    (void)co_await conn.recv();
  };
  const auto ending = run_and_cancel(task(std::move(mine), unwound), 10ms);
  EXPECT_TRUE(ending.finished);
  EXPECT_EQ(ending.code, canceled);
  EXPECT_TRUE(unwound);
  peer.settimeout(5s);
  EXPECT_EQ(peer.recv(1), "");  // the unwound Connection closed its socket
}

TEST(CancelTest, CancelInterruptsReadlineInANestedTask) {
  auto [mine, peer] = socketpair();
  peer.sendall("no newline yet");
  auto task = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    (void)co_await conn.readline();
  };
  const auto ending = run_and_cancel(task(std::move(mine)), 10ms);
  EXPECT_EQ(ending.code, canceled);
}

TEST(CancelTest, CancelInterruptsEventWait) {
  Event event;
  bool unwound = false;
  auto task = [](Event& e, bool& flag) -> Task<void> {
    SetOnDestroy guard{&flag};
    co_await e.wait();
  };
  const auto ending = run_and_cancel(task(event, unwound), 10ms);
  EXPECT_EQ(ending.code, canceled);
  EXPECT_TRUE(unwound);
  EXPECT_FALSE(event.is_set());
  event.set();  // the cancelled waiter left the list: nothing to wake
}

TEST(CancelTest, CancelledTaskFailsItsNextOperationAtOnce) {
  auto task = []() -> Task<void> {
    try {
      co_await sleep(1h);
    } catch (const std::system_error&) {
    }
    // The chain stays cancelled: every later operation ends at once.
    co_await sleep(1h);
  };
  const auto start = Clock::now();
  const auto ending = run_and_cancel(task(), 10ms);
  EXPECT_EQ(ending.code, canceled);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(CancelTest, CancellingTheOuterTaskCancelsTheTaskInsideWithTimeout) {
  bool unwound = false;
  auto inner = [](bool& flag) -> Task<int> {
    SetOnDestroy guard{&flag};
    co_await sleep(1h);
    co_return 1;
  };
  auto outer = [&inner](bool& flag) -> Task<void> { (void)co_await with_timeout(1h, inner(flag)); };
  const auto ending = run_and_cancel(outer(unwound), 10ms);
  EXPECT_TRUE(ending.finished);
  EXPECT_EQ(ending.code, canceled) << "a cancellation is not a timeout";
  EXPECT_FALSE(ending.timeout_error);
  EXPECT_TRUE(unwound);
}

// ---- with_timeout ----------------------------------------------------------------------------

TEST(WithTimeoutTest, ExpiryThrowsTimeoutErrorWithTimedOut) {
  bool unwound = false;
  auto slow = [](bool& flag) -> Task<int> {
    SetOnDestroy guard{&flag};
    co_await sleep(1h);
    co_return 1;
  };
  auto task = [&slow](bool& flag) -> Task<void> { (void)co_await with_timeout(20ms, slow(flag)); };
  const auto start = Clock::now();
  const auto ending = run_to_end(task(unwound));
  EXPECT_TRUE(ending.timeout_error);
  EXPECT_EQ(ending.code, timed_out);
  EXPECT_TRUE(unwound);
  EXPECT_GE(Clock::now() - start, 20ms);
}

TEST(WithTimeoutTest, CompletingInTimeReturnsTheValue) {
  EventLoop loop;
  auto quick = []() -> Task<std::string> {
    co_await sleep(1ms);
    co_return "done";
  };
  auto task = [&quick]() -> Task<std::string> { co_return co_await with_timeout(5s, quick()); };
  EXPECT_EQ(loop.run_until_complete(task()), "done");
  EXPECT_EQ(loop.pending_timers(), 0U);  // the deadline was disarmed
}

TEST(WithTimeoutTest, WrapsAnAwaitableThatIsNotATask) {
  auto [mine, peer] = socketpair();
  auto task = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    (void)co_await with_timeout(20ms, conn.recv());
  };
  const auto ending = run_to_end(task(std::move(mine)));
  EXPECT_TRUE(ending.timeout_error);
  EXPECT_EQ(ending.code, timed_out);
  EventLoop loop;
  auto sleeper = []() -> Task<void> { co_await with_timeout(1s, sleep(1ms)); };
  EXPECT_NO_THROW(loop.run_until_complete(sleeper()));
}

TEST(WithTimeoutTest, ExceptionOfTheInnerTaskPassesThrough) {
  EventLoop loop;
  auto failing = []() -> Task<int> {
    co_await sleep(1ms);
    throw SocketError(std::make_error_code(std::errc::connection_refused), "inner");
  };
  auto task = [&failing]() -> Task<int> { co_return co_await with_timeout(5s, failing()); };
  EXPECT_TRUE(test::throws_code<SocketError>([&] { loop.run_until_complete(task()); },
                                             std::errc::connection_refused));
}

TEST(WithTimeoutTest, NestedInnerTimeoutExpiresFirstAndTheOuterGoesOn) {
  EventLoop loop;
  auto inner = []() -> Task<int> {
    co_await sleep(1h);
    co_return 1;
  };
  auto middle = [&inner]() -> Task<int> {
    try {
      co_return co_await with_timeout(10ms, inner());
    } catch (const TimeoutError&) {
    }
    co_await sleep(1ms);  // the outer deadline has not passed: this still works
    co_return 2;
  };
  auto outer = [&middle]() -> Task<int> { co_return co_await with_timeout(5s, middle()); };
  EXPECT_EQ(loop.run_until_complete(outer()), 2);
}

TEST(WithTimeoutTest, NestedOuterTimeoutExpiresWhileTheInnerWaits) {
  bool unwound = false;
  auto inner = [](bool& flag) -> Task<int> {
    SetOnDestroy guard{&flag};
    co_await sleep(1h);
    co_return 1;
  };
  auto outer = [&inner](bool& flag) -> Task<void> {
    (void)co_await with_timeout(20ms, with_timeout(1h, inner(flag)));
  };
  const auto ending = run_to_end(outer(unwound));
  EXPECT_TRUE(ending.timeout_error);
  EXPECT_EQ(ending.code, timed_out);
  EXPECT_TRUE(unwound);
}

// ---- sleep -----------------------------------------------------------------------------------

TEST(SleepTest, SleepsAtLeastTheDuration) {
  EventLoop loop;
  auto task = []() -> Task<void> {
    for (const auto d : {1ms, 10ms, 30ms}) {
      const auto start = Clock::now();
      co_await sleep(d);
      EXPECT_GE(Clock::now() - start, d);
    }
  };
  loop.run_until_complete(task());
}

TEST(SleepTest, ConcurrentSleepersWakeInDeadlineOrder) {
  EventLoop loop;
  std::vector<int> order;
  auto sleeper = [](std::vector<int>& out, int ms) -> Task<void> {
    co_await sleep(std::chrono::milliseconds(ms));
    out.push_back(ms);
  };
  for (const int ms : {30, 10, 20, 0}) loop.spawn(sleeper(order, ms));
  auto wait = [](std::vector<int>& out) -> Task<void> {
    const auto deadline = Clock::now() + 5s;
    while (out.size() < 4 && Clock::now() < deadline) co_await sleep(1ms);
  };
  loop.run_until_complete(wait(order));
  EXPECT_EQ(order, (std::vector<int>{0, 10, 20, 30}));
}

TEST(SleepTest, ZeroSleepYieldsToOtherReadyWork) {
  EventLoop loop;
  std::vector<std::string> order;
  auto a = [](std::vector<std::string>& out) -> Task<void> {
    out.push_back("a1");
    co_await sleep(0ms);
    out.push_back("a2");
  };
  auto b = [](std::vector<std::string>& out) -> Task<void> {
    out.push_back("b");
    co_return;
  };
  loop.spawn(a(order));
  loop.spawn(b(order));
  auto wait = []() -> Task<void> { co_await sleep(5ms); };
  loop.run_until_complete(wait());
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b", "a2"}));
}

// ---- Event -----------------------------------------------------------------------------------

TEST(EventTest, SetWakesEveryWaiterAndLaterWaitsDoNotSuspend) {
  EventLoop loop;
  Event event;
  int woken = 0;
  auto waiter = [](Event& e, int& n) -> Task<void> {
    co_await e.wait();
    ++n;
  };
  for (int i = 0; i < 3; ++i) loop.spawn(waiter(event, woken));
  auto setter = [](Event& e, int& n) -> Task<void> {
    co_await sleep(1ms);
    EXPECT_EQ(n, 0);
    e.set();
    EXPECT_TRUE(e.is_set());
    co_await sleep(1ms);
    EXPECT_EQ(n, 3);
    co_await e.wait();  // already set: no suspension
    e.clear();
    EXPECT_FALSE(e.is_set());
  };
  loop.run_until_complete(setter(event, woken));
  EXPECT_EQ(loop.pending_tasks(), 0U);
}

}  // namespace
}  // namespace sockserv::aio
