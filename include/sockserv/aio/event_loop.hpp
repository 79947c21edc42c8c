// SPDX-License-Identifier: MIT
// EventLoop: one thread's reactor (the HOWTO's "non-blocking sockets + select", done once, well).
//
//   EventLoop loop;
//   loop.call_later(1s, [&] { loop.stop(); });
//   loop.run_forever();
//
// One loop per thread. Each iteration (the long form: docs/ARCHITECTURE.md, event-loop layer):
//   1. wait for I/O: no wait if callbacks are ready, else until the earliest timer, else forever;
//   2. mark the coroutines and callbacks whose descriptors are ready;
//   3. fire expired timers;
//   4. run what was made ready, in order (work made ready while running waits for the next
//      iteration, so no coroutine can starve I/O).
//
// Backends: epoll (edge-triggered for connections: one epoll_ctl per connection's life), poll
// (portable; forced with SOCKSERV_POLLER=poll, which CI runs the whole async suite with).
//
// Thread safety: everything belongs to the loop's thread (checked by assert in debug builds),
// except call_soon_threadsafe() and stop_threadsafe(), which any thread may call.
#pragma once

#include <sockserv/aio/detail/io_state.hpp>
#include <sockserv/aio/task.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

namespace sockserv::aio {

using Clock = std::chrono::steady_clock;

namespace detail {
class Reactor;
}

// A callback scheduled with call_later(); cancel() before it runs and it never will.
class TimerHandle {
 public:
  TimerHandle() = default;
  void cancel() noexcept;
  bool active() const noexcept;

 private:
  friend class EventLoop;
  struct Entry;
  TimerHandle(EventLoop* loop, std::shared_ptr<Entry> entry)
      : loop_(loop), entry_(std::move(entry)) {}
  EventLoop* loop_ = nullptr;
  std::shared_ptr<Entry> entry_;
};

class EventLoop {
 public:
  // automatic: epoll, or what SOCKSERV_POLLER says (poll, io_uring). io_uring exists when
  // liburing was found at build time (else constructing the loop throws).
  enum class Backend { automatic, epoll, poll, io_uring };

  // Throws SocketError when the backend cannot be created.
  explicit EventLoop(Backend backend = Backend::automatic);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  // The loop running on the calling thread, or nullptr.
  static EventLoop* current() noexcept;
  Backend backend() const noexcept { return backend_; }
  Clock::time_point time() const noexcept { return Clock::now(); }

  // --- Scheduling (loop thread)
  // --------------------------------------------------------------------
  void call_soon(std::function<void()> callback);
  TimerHandle call_later(std::chrono::nanoseconds delay, std::function<void()> callback);
  TimerHandle call_at(Clock::time_point when, std::function<void()> callback);
  // Any thread: queues `callback` and wakes the loop (an eventfd write).
  void call_soon_threadsafe(std::function<void()> callback);

  // The readiness level, as in asyncio: `callback` runs whenever `fd` is readable (writable),
  // until removed. Returns false from remove_* when nothing was registered.
  void add_reader(int fd, std::function<void()> callback);
  void add_writer(int fd, std::function<void()> callback);
  bool remove_reader(int fd);
  bool remove_writer(int fd);

  // Starts `task` detached. Its exception goes to exception_handler. With `cancel_state`, the
  // chain uses it (the caller keeps it alive until the task ends) so the caller can cancel it.
  void spawn(Task<void> task, CancelState* cancel_state = nullptr);
  // For the library's servers: starts `task` detached with `owner` as its chain's cancel state,
  // without the wrapper spawn() adds. When the task ends its frame is destroyed and
  // owner.on_root_done (which must be set) is called. The loop does not track the task: if it
  // never ends, the owner destroys the returned frame (before the loop).
  std::coroutine_handle<> start_root(Task<void> task, CancelState& owner);
  // Called with the exception of a detached task. Default: a report on stderr.
  std::function<void(std::exception_ptr)> exception_handler;

  // --- Running
  // -------------------------------------------------------------------------------------------
  // Runs until stop(). Throws std::logic_error if this thread already runs a loop.
  void run_forever();
  // Runs until `task` completes; returns its result or rethrows its exception. Throws
  // std::logic_error when the loop stops first (the task stays scheduled; if the loop runs again
  // it goes on, and its result is dropped).
  template <class T>
  T run_until_complete(Task<T> task);
  // Ends run_forever() after the current iteration. Loop thread.
  void stop() noexcept { stopping_ = true; }
  // Any thread.
  void stop_threadsafe();
  bool is_running() const noexcept { return running_; }
  // True on the thread that runs the loop (or any thread while it is not running).
  bool in_loop_thread() const noexcept;

  // --- Receiving by completion (the io_uring backend) ----------------------------------------
  // What the backend's buffer ring is doing, for metrics and tests: whether the backend
  // receives by completion at all, its buffers free now (of `buffers`), and how often a
  // connection's multishot recv ended because the ring had run dry (ENOBUFS: the connection
  // read with recv(2) until the ring had buffers again). Loop thread.
  struct ReceiveCounters {
    bool by_completion = false;
    unsigned buffers = 0;
    unsigned buffers_free = 0;
    std::uint64_t ring_exhausted = 0;
  };
  ReceiveCounters receive_counters() const noexcept;

  // --- Fairness
  // ------------------------------------------------------------------------------------------
  // Tokio's cooperative budget: each time the loop resumes a coroutine, the coroutine may
  // complete `operations` I/O operations at once (data already there, room to send), or move
  // `bytes` through them, before its next operation yields to the loop. A connection whose data
  // keeps arriving thus cannot keep the others waiting; the yield costs one trip through the
  // loop, not a syscall on the connection. Loop thread.
  struct FairnessBudget {
    std::uint32_t operations = 64;
    std::size_t bytes = std::size_t{256} * 1024;
  };
  void set_fairness_budget(FairnessBudget budget) noexcept {
    fairness_ = budget;
    refill_budget();
  }
  FairnessBudget fairness_budget() const noexcept { return fairness_; }

  // --- For the library's awaitables
  // -------------------------------------------------------------------
  // Charges an operation that completed at once, having moved `bytes`. False when the running
  // coroutine's budget is spent: the operation must yield (resume_soon) instead of completing.
  bool spend_budget(std::size_t bytes) noexcept {
    if (operations_left_ == 0 || bytes_left_ == 0) return false;
    --operations_left_;
    bytes_left_ = bytes >= bytes_left_ ? 0 : bytes_left_ - bytes;
    return true;
  }
  void resume_soon(std::coroutine_handle<> h) { ready_.push_back(h); }
  detail::Reactor& reactor() noexcept { return *reactor_; }
  void arm(detail::TimerNode& node, Clock::time_point deadline);
  void disarm(detail::TimerNode& node) noexcept;
  // Registers / unregisters a descriptor. edge_triggered: both directions, once.
  void add_io(detail::IoState& state);
  void remove_io(detail::IoState& state) noexcept;
  // Suspends `waiter` until its descriptor is ready, its timer fires, or its chain is cancelled.
  // Returns false (do not suspend) when the chain is already cancelled: waiter.error is set.
  bool wait_io(detail::IoWaiter& waiter, std::optional<Clock::time_point> deadline);
  // Moves a waiting waiter's deadline earlier (no-op when `deadline` is not earlier).
  void shorten_io_deadline(detail::IoWaiter& waiter, Clock::time_point deadline);
  std::size_t pending_timers() const noexcept { return timers_.size(); }
  std::size_t pending_tasks() const noexcept { return roots_.size(); }

 private:
  struct Callback;
  void run_once();
  void dispatch(detail::IoState& state, unsigned events);
  void fire_timers();
  void run_ready();
  void drain_threadsafe_queue();
  void update_interest(detail::IoState& state);
  void heap_up(std::size_t i) noexcept;
  void heap_down(std::size_t i) noexcept;
  void heap_remove(std::size_t i) noexcept;
  static void finish_wait(detail::IoWaiter& waiter, int error) noexcept;
  static void abandon_wait(detail::IoWaiter& waiter, int error) noexcept;
  static void on_io_deadline(detail::TimerNode* node);
  void refill_budget() noexcept {
    operations_left_ = fairness_.operations;
    bytes_left_ = fairness_.bytes;
  }

 public:
  // Unregisters a waiter that is being destroyed while still suspended (its frame was destroyed).
  static void forget_wait(detail::IoWaiter& waiter) noexcept;

  Backend backend_;
  std::unique_ptr<detail::Reactor> reactor_;
  std::vector<std::coroutine_handle<>> ready_;
  std::vector<std::function<void()>> callbacks_;
  // Reused every iteration, so the loop allocates nothing in steady state.
  std::vector<std::coroutine_handle<>> running_handles_;
  std::vector<std::function<void()>> running_callbacks_;
  std::vector<detail::ReadyIo> io_events_;
  std::vector<detail::TimerNode*> timers_;  // binary min-heap on (deadline, sequence)
  std::uint32_t timer_sequence_ = 0;
  struct Watch;
  std::unordered_map<int, std::unique_ptr<Watch>> watches_;  // add_reader/add_writer
  std::mutex threadsafe_mutex_;
  std::vector<std::function<void()>> threadsafe_queue_;
  std::atomic<bool> wake_pending_{false};
  int wakeup_fd_ = -1;
  std::unique_ptr<detail::CallbackIoState> wakeup_state_;
  // Detached tasks that have not finished; destroyed with the loop.
  std::list<std::coroutine_handle<>> roots_;
  std::thread::id thread_;
  FairnessBudget fairness_;
  std::uint32_t operations_left_ = fairness_.operations;
  std::size_t bytes_left_ = fairness_.bytes;
  bool running_ = false;
  bool stopping_ = false;
};

// Starts `task` detached on the loop running on this thread.
void spawn(Task<void> task);

// ---- implementation ----

namespace detail {
// What run_until_complete() waits for. Shared with the task, so a task left behind when the
// loop stopped first (or could not run) finds its result a home and does not stop later runs.
template <class T>
struct Outcome {
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
  std::exception_ptr error;
  bool abandoned = false;
};

template <class T>
Task<void> complete_into(Task<T> task, std::shared_ptr<Outcome<T>> outcome, EventLoop& loop) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      outcome->value.emplace(true);
    } else {
      outcome->value.emplace(co_await std::move(task));
    }
  } catch (...) {
    outcome->error = std::current_exception();
  }
  if (!outcome->abandoned) loop.stop();
}
}  // namespace detail

template <class T>
T EventLoop::run_until_complete(Task<T> task) {
  auto outcome = std::make_shared<detail::Outcome<T>>();
  spawn(detail::complete_into(std::move(task), outcome, *this));
  struct Abandon {
    detail::Outcome<T>& outcome;
    ~Abandon() { outcome.abandoned = true; }
  } abandon{*outcome};
  run_forever();
  if (outcome->error) std::rethrow_exception(outcome->error);
  if (!outcome->value) throw std::logic_error("run_until_complete: the loop stopped first");
  if constexpr (!std::is_void_v<T>) return std::move(*outcome->value);
}

}  // namespace sockserv::aio
