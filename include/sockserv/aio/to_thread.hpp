// SPDX-License-Identifier: MIT
/// @file
/// to_thread(): run blocking work on a worker thread and await its result (asyncio.to_thread).
///
/// ```
///   std::string page = co_await to_thread([&] { return render(slow_database_query()); });
/// ```
///
/// The HOWTO notes that programs which "do something more" than move bytes need threads: here
/// the event loop keeps serving while the function runs. Workers come from one process-wide pool
/// of max(4, 2 x cores) threads; at most 65,536 calls may wait for a worker, and a call beyond
/// that throws std::runtime_error instead of queueing without bound. The function's exception
/// reaches the awaiting coroutine. A cancelled task still waits for its function to return (a
/// thread cannot be interrupted), then sees the cancellation at its next operation.
#pragma once

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/task.hpp>

#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace sockserv::aio {
namespace detail {

// Queues `job` for a worker. Throws std::runtime_error when the queue is full.
void submit_to_pool(std::function<void()> job);

template <class R>
class ToThreadOperation {
 public:
  explicit ToThreadOperation(std::function<R()> fn) : fn_(std::move(fn)) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    EventLoop* loop = EventLoop::current();
    submit_to_pool([this, h, loop] {
      try {
        if constexpr (std::is_void_v<R>) {
          fn_();
        } else {
          result_.emplace(fn_());
        }
      } catch (...) {
        error_ = std::current_exception();
      }
      loop->call_soon_threadsafe([h] { detail::resume_flat(h); });
    });
  }
  R await_resume() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 private:
  std::function<R()> fn_;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result_{};
  std::exception_ptr error_;
};

}  // namespace detail

/// An awaitable that runs `fn()` on a worker thread of the process-wide pool and completes
/// with its result, while the event loop goes on serving. Await it where it is made.
/// `fn` must be safe to run on another thread (what it captures by reference must outlive it).
/// What `fn` throws is rethrown by `co_await`.
/// @throws std::runtime_error (from `co_await`) when 65,536 calls already wait for a worker.
/// @python asyncio.to_thread
template <class F>
auto to_thread(F fn) -> detail::ToThreadOperation<std::invoke_result_t<F>> {
  return detail::ToThreadOperation<std::invoke_result_t<F>>(std::move(fn));
}

}  // namespace sockserv::aio
