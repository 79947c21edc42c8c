// SPDX-License-Identifier: MIT
/// @file
/// EventLoop: one thread's reactor (the HOWTO's "non-blocking sockets + select", done once, well).
///
/// ```
///   EventLoop loop;
///   loop.call_later(1s, [&] { loop.stop(); });
///   loop.run_forever();
/// ```
///
/// One loop per thread. Each iteration (the long form: docs/ARCHITECTURE.md, event-loop layer):
///   1. wait for I/O: no wait if callbacks are ready, else until the earliest timer, else forever;
///   2. mark the coroutines and callbacks whose descriptors are ready;
///   3. fire expired timers;
///   4. run what was made ready, in order (work made ready while running waits for the next
///      iteration, so no coroutine can starve I/O).
///
/// Backends: epoll (edge-triggered for connections: one epoll_ctl per connection's life), poll
/// (portable; forced with SOCKSERV_POLLER=poll, which CI runs the whole async suite with).
///
/// Thread safety: everything belongs to the loop's thread (checked by assert in debug builds),
/// except call_soon_threadsafe() and stop_threadsafe(), which any thread may call.
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

/// The loop's clock: monotonic, as asyncio's loop.time().
using Clock = std::chrono::steady_clock;

namespace detail {
class Reactor;
}

/// A callback scheduled with call_later() or call_at(); cancel() before it runs and it never
/// will. Copies refer to the same timer.
/// @threadsafety Loop thread only.
/// @python asyncio.TimerHandle
class TimerHandle {
 public:
  /// A handle to no timer (cancel() does nothing, active() is false).
  TimerHandle() = default;
  /// Makes sure the callback never runs (nothing if it already ran or was cancelled).
  /// @python asyncio.TimerHandle.cancel
  void cancel() noexcept;
  /// True while the timer is armed: neither cancelled nor expired.
  bool active() const noexcept;

 private:
  friend class EventLoop;
  struct Entry;
  TimerHandle(EventLoop* loop, std::shared_ptr<Entry> entry)
      : loop_(loop), entry_(std::move(entry)) {}
  EventLoop* loop_ = nullptr;
  std::shared_ptr<Entry> entry_;
};

/// One thread's event loop: runs coroutines (Task), callbacks and timers, and waits for I/O
/// (see the file's description for an iteration's steps). Not copyable.
/// @threadsafety Loop thread only (asserted in debug builds), except call_soon_threadsafe() and
/// stop_threadsafe(), which any thread may call.
/// @python asyncio's event loop (asyncio.AbstractEventLoop)
class EventLoop {
 public:
  /// How the loop waits for I/O.
  enum class Backend {
    automatic,  ///< epoll, or what the SOCKSERV_POLLER environment variable says.
    epoll,      ///< epoll(7), edge-triggered for connections.
    poll,       ///< poll(2): portable, level-triggered.
    io_uring    ///< io_uring, when liburing was found at build time (else the loop throws).
  };

  /// A loop on `backend`, not yet running.
  /// @throws SocketError when the backend cannot be created (std::errc::function_not_supported
  ///         for a backend this build or kernel lacks).
  explicit EventLoop(Backend backend = Backend::automatic);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  /// Destroys the detached tasks that have not finished (their destructors close their
  /// sockets) and the backend. The loop must not be running.
  ~EventLoop();

  /// The loop running on the calling thread, or nullptr (asyncio raises instead).
  /// @python asyncio.get_running_loop
  static EventLoop* current() noexcept;
  /// The backend in use (never automatic: the constructor resolves it).
  Backend backend() const noexcept { return backend_; }
  /// The loop's clock reading, the reference of call_at().
  /// @python asyncio.loop.time
  Clock::time_point time() const noexcept { return Clock::now(); }

  // --- Scheduling (loop thread)
  // --------------------------------------------------------------------
  /// Runs `callback` on the next iteration, after the callbacks queued before it. A callback's
  /// exception goes to exception_handler.
  /// @python asyncio.loop.call_soon
  void call_soon(std::function<void()> callback);
  /// Runs `callback` once `delay` has passed; the handle cancels it.
  /// @python asyncio.loop.call_later
  TimerHandle call_later(std::chrono::nanoseconds delay, std::function<void()> callback);
  /// Runs `callback` once time() reaches `when`; the handle cancels it.
  /// @python asyncio.loop.call_at
  TimerHandle call_at(Clock::time_point when, std::function<void()> callback);
  /// Queues `callback` and wakes the loop (an eventfd write).
  /// @threadsafety Safe from any thread.
  /// @python asyncio.loop.call_soon_threadsafe
  void call_soon_threadsafe(std::function<void()> callback);

  /// The readiness level, as in asyncio: `callback` runs whenever `fd` is readable (writable),
  /// until removed. Registering again replaces the callback.
  /// @throws SocketError when the backend refuses the descriptor (EBADF, EPERM for a regular
  ///         file under epoll, ...).
  /// @python asyncio.loop.add_reader, asyncio.loop.add_writer
  /// @{
  void add_reader(int fd, std::function<void()> callback);
  void add_writer(int fd, std::function<void()> callback);
  /// @}
  /// Stops watching `fd` for reading (writing); false when nothing was registered.
  /// @python asyncio.loop.remove_reader, asyncio.loop.remove_writer
  /// @{
  bool remove_reader(int fd);
  bool remove_writer(int fd);
  /// @}

  /// Starts `task` detached, on the next iteration. Its exception goes to exception_handler.
  /// With `cancel_state`, the chain uses it (the caller keeps it alive until the task ends) so
  /// the caller can cancel it. Unfinished tasks are destroyed with the loop.
  /// @python asyncio.loop.create_task
  void spawn(Task<void> task, CancelState* cancel_state = nullptr);
  /// For the library's servers: starts `task` detached with `owner` as its chain's cancel state,
  /// without the wrapper spawn() adds. When the task ends its frame is destroyed and
  /// owner.on_root_done (which must be set) is called. The loop does not track the task: if it
  /// never ends, the owner destroys the returned frame (before the loop).
  /// @throws std::invalid_argument when `task` is empty.
  std::coroutine_handle<> start_root(Task<void> task, CancelState& owner);
  /// Called with the exception of a detached task or of a callback. Default (empty): a report
  /// on stderr.
  /// @python asyncio.loop.set_exception_handler
  std::function<void(std::exception_ptr)> exception_handler;

  // --- Running
  // -------------------------------------------------------------------------------------------
  /// Runs iterations until stop(), on the calling thread (which becomes the loop's thread).
  /// @throws std::logic_error when this thread already runs a loop.
  /// @throws SocketError when waiting for I/O fails (not for EINTR).
  /// @python asyncio.loop.run_forever
  void run_forever();
  /// Runs until `task` completes; returns its result or rethrows its exception.
  /// @throws std::logic_error when the loop stops first (the task stays scheduled; if the loop
  ///         runs again it goes on, and its result is dropped), or as run_forever().
  /// @python asyncio.loop.run_until_complete
  template <class T>
  T run_until_complete(Task<T> task);
  /// Ends run_forever() after the current iteration. Loop thread.
  /// @python asyncio.loop.stop
  void stop() noexcept { stopping_ = true; }
  /// stop() from any thread: queued with call_soon_threadsafe().
  /// @threadsafety Safe from any thread.
  void stop_threadsafe();
  /// True while run_forever() (or run_until_complete()) runs.
  /// @python asyncio.loop.is_running
  bool is_running() const noexcept { return running_; }
  /// True on the thread that runs the loop (or any thread while it is not running).
  bool in_loop_thread() const noexcept;

  // --- Receiving by completion (the io_uring backend) ----------------------------------------
  /// What the backend's buffer ring is doing, for metrics and tests. Loop thread.
  struct ReceiveCounters {
    /// Whether the backend receives by completion at all (io_uring with a buffer ring).
    bool by_completion = false;
    unsigned buffers = 0;       ///< Buffers in the ring.
    unsigned buffers_free = 0;  ///< Of those, free now.
    /// How often a connection's multishot recv ended because the ring had run dry (ENOBUFS:
    /// the connection read with recv(2) until the ring had buffers again).
    std::uint64_t ring_exhausted = 0;
  };
  /// The buffer ring's figures now (all zero but for an io_uring loop). Loop thread.
  ReceiveCounters receive_counters() const noexcept;

  // --- Fairness
  // ------------------------------------------------------------------------------------------
  /// Tokio's cooperative budget: each time the loop resumes a coroutine, the coroutine may
  /// complete `operations` I/O operations at once (data already there, room to send), or move
  /// `bytes` through them, before its next operation yields to the loop. A connection whose data
  /// keeps arriving thus cannot keep the others waiting; the yield costs one trip through the
  /// loop, not a syscall on the connection. Loop thread.
  struct FairnessBudget {
    std::uint32_t operations = 64;               ///< Operations completed at once per turn.
    std::size_t bytes = std::size_t{64} * 1024;  ///< Bytes moved at once per turn.
  };
  /// Sets the budget each resumed coroutine gets (default: 64 operations, 64 KiB: one block of
  /// the buffer pool, so bulk streams take turns a read and a write at a time). Loop thread.
  void set_fairness_budget(FairnessBudget budget) noexcept {
    fairness_ = budget;
    refill_budget();
  }
  /// The budget each resumed coroutine gets.
  FairnessBudget fairness_budget() const noexcept { return fairness_; }

  // --- For the library's awaitables
  // -------------------------------------------------------------------
  /// For awaitables: charges an operation that completed at once, having moved `bytes`. False
  /// when the running coroutine's budget is spent: the operation must yield (resume_soon)
  /// instead of completing.
  bool spend_budget(std::size_t bytes) noexcept {
    if (operations_left_ == 0 || bytes_left_ == 0) return false;
    --operations_left_;
    bytes_left_ = bytes >= bytes_left_ ? 0 : bytes_left_ - bytes;
    return true;
  }
  /// For awaitables: resumes `h` on the next iteration.
  void resume_soon(std::coroutine_handle<> h) { ready_.push_back(h); }
  /// For awaitables: the backend.
  detail::Reactor& reactor() noexcept { return *reactor_; }
  /// For awaitables: fires `node` at `deadline` (re-arms it if armed).
  void arm(detail::TimerNode& node, Clock::time_point deadline);
  /// For awaitables: `node` will not fire (nothing if it is not armed).
  void disarm(detail::TimerNode& node) noexcept;
  /// For awaitables: registers a descriptor. edge_triggered: both directions, once.
  /// @throws SocketError when the backend refuses it.
  void add_io(detail::IoState& state);
  /// For awaitables: unregisters a descriptor.
  void remove_io(detail::IoState& state) noexcept;
  /// For awaitables: suspends `waiter` until its descriptor is ready, its timer fires, or its
  /// chain is cancelled. Returns false (do not suspend) when the chain is already cancelled:
  /// waiter.error is set.
  bool wait_io(detail::IoWaiter& waiter, std::optional<Clock::time_point> deadline);
  /// For awaitables: moves a waiting waiter's deadline earlier (no-op when `deadline` is not
  /// earlier).
  void shorten_io_deadline(detail::IoWaiter& waiter, Clock::time_point deadline);
  /// Timers armed now (call_later(), sleeps, I/O deadlines), for tests.
  std::size_t pending_timers() const noexcept { return timers_.size(); }
  /// Tasks started with spawn() that have not finished, for tests.
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
  /// For awaitables: unregisters a waiter that is being destroyed while still suspended (its
  /// frame was destroyed).
  static void forget_wait(detail::IoWaiter& waiter) noexcept;

 private:
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

/// Starts `task` detached on the loop running on this thread (EventLoop::spawn()).
/// @throws std::logic_error when no event loop runs on this thread.
/// @python asyncio.create_task
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
