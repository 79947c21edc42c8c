// SPDX-License-Identifier: MIT
/// @file
/// Time in coroutines: sleep() and with_timeout().
///
/// ```
///   co_await sleep(100ms);
///   auto line = co_await with_timeout(5s, conn.readline());   // TimeoutError after 5 s
/// ```
///
/// with_timeout() runs the task with a cancellation state of its own and cancels it at the
/// deadline: whatever the task is suspended in (I/O, sleep, a nested task) ends with
/// operation_canceled, the task unwinds, and with_timeout() throws TimeoutError. Cancelling the
/// outer task cancels the inner one too. Any awaitable works: it is wrapped in a Task first.
#pragma once

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/task.hpp>
#include <sockserv/error.hpp>

#include <chrono>
#include <coroutine>
#include <system_error>
#include <type_traits>
#include <utility>

namespace sockserv::aio {
namespace detail {

class SleepOperation : private TimerNode {
 public:
  explicit SleepOperation(Clock::time_point until) noexcept : until_(until) {}
  // Movable until it is awaited (with_timeout takes awaitables by value).
  SleepOperation(SleepOperation&& other) noexcept : TimerNode(), until_(other.until_) {}
  SleepOperation(const SleepOperation&) = delete;
  SleepOperation& operator=(const SleepOperation&) = delete;
  ~SleepOperation() { stop(); }

  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    return begin(h, cancel_state_of(h));
  }
  void await_resume() const {
    if (cancelled_) throw_error(std::make_error_code(std::errc::operation_canceled), "sleep");
  }

 private:
  bool begin(std::coroutine_handle<> h, CancelState* cancel);
  void stop() noexcept;

  Clock::time_point until_;
  std::coroutine_handle<> handle_;
  EventLoop* loop_ = nullptr;
  CancelState* cancel_ = nullptr;
  bool cancelled_ = false;
};

// The cancellation state of the coroutine that awaits it (nullptr outside a Task chain).
struct CurrentCancelState {
  CancelState* state = nullptr;
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
    state = cancel_state_of(h);
    return false;
  }
  CancelState* await_resume() const noexcept { return state; }
};

// Arms a deadline that cancels `child`; links the parent's cancellation to it.
class Deadline : private TimerNode {
 public:
  Deadline(std::chrono::nanoseconds timeout, CancelState* parent);
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  ~Deadline();
  CancelState child;
  bool expired() const noexcept { return expired_; }

 private:
  EventLoop* loop_;
  CancelState* parent_;
  bool expired_ = false;
};

template <class A>
auto as_task(A awaitable) -> Task<decltype(std::declval<A>().await_resume())> {
  co_return co_await std::move(awaitable);
}

}  // namespace detail

/// Suspends the awaiting coroutine for `duration` (at least one loop iteration, even for zero).
/// Await the result where it is made (or pass it to with_timeout()).
/// @throws SocketError with std::errc::operation_canceled (from `co_await`) when the task is
///         cancelled while it sleeps.
/// @python asyncio.sleep
inline detail::SleepOperation sleep(std::chrono::nanoseconds duration) {
  return detail::SleepOperation(Clock::now() + duration);
}

/// Runs `task` and gives its result, unless `timeout` passes first: then the task is cancelled,
/// unwinds, and TimeoutError is thrown.
/// Other exceptions of `task` (a cancellation of the awaiting task included) pass through.
/// @throws TimeoutError (std::errc::timed_out) when the deadline passed first.
/// @python asyncio.wait_for
template <class T>
Task<T> with_timeout(std::chrono::nanoseconds timeout, Task<T> task) {
  detail::Deadline deadline(timeout, co_await detail::CurrentCancelState{});
  task.handle().promise().cancel_state = &deadline.child;
  try {
    co_return co_await std::move(task);
  } catch (const std::system_error& e) {
    if (deadline.expired() && e.code() == std::errc::operation_canceled) {
      throw_error(std::make_error_code(std::errc::timed_out), "with_timeout");
    }
    throw;
  }
}

/// with_timeout() for any awaitable (a Connection operation, sleep(), Event::wait()): it is
/// wrapped in a Task first, so a buffered read's timeout covers the whole call.
/// Other exceptions of the awaitable pass through.
/// @throws TimeoutError (std::errc::timed_out) when the deadline passed first.
/// @python asyncio.wait_for
template <class Awaitable>
auto with_timeout(std::chrono::nanoseconds timeout, Awaitable awaitable) {
  return with_timeout(timeout, detail::as_task(std::move(awaitable)));
}

}  // namespace sockserv::aio
