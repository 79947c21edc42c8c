// SPDX-License-Identifier: MIT
/// @file
/// `Task<T>`: the coroutine type of sockserv::aio.
///
/// ```
///   Task<std::string> read_greeting(Connection& conn) { co_return co_await conn.readline(); }
///   Task<void> handle(Connection conn) { auto line = co_await read_greeting(conn); ... }
/// ```
///
/// A Task is lazy: it starts when awaited (or when spawn()ed), runs on the awaiting coroutine's
/// event loop, and hands its result or exception to the awaiter. Awaiting a finished Task's
/// successor uses symmetric transfer (through the loop's trampoline, see resume_flat), so long
/// chains of co_await never grow the stack, whatever the optimisation level.
///
/// Cancellation: every chain of Tasks started by one spawn() shares a CancelState. cancel() makes
/// the operation the chain is suspended in (I/O, sleep, to_thread) finish at once with
/// std::errc::operation_canceled, and every later operation too, so the coroutine unwinds through
/// its destructors like any exception. The servers cancel a connection's task when they shut down.
///
/// Ownership: a Task owns its coroutine frame (move-only). Thread safety: a Task runs on one loop.
#pragma once

#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

/// The event-loop layer: coroutines (Task), the EventLoop that runs them, awaitable
/// connections and the event-loop servers. Python's asyncio, in C++20 coroutines.
namespace sockserv::aio {

namespace detail {
struct IoState;
}

/// The cancellation state of one chain of tasks (those a spawn() started, and every Task they
/// await). Awaitables that suspend register how to interrupt themselves in `cancel_fn` and
/// `cancel_arg` and clear it when they resume. Not copyable: its owner keeps it alive until the
/// chain ends.
/// @threadsafety Loop thread only.
struct CancelState {
  /// Set by cancel(): every operation of the chain from now on throws operation_canceled.
  bool cancelled = false;
  /// Set when the cancellation came from the peer hanging up while the chain was busy elsewhere
  /// (not from a shutdown): the servers count and log that as a peer gone, not as nothing.
  bool peer_gone = false;
  /// For awaitables: interrupts the operation the chain is suspended in (nullptr: none).
  void (*cancel_fn)(void*) = nullptr;
  /// For awaitables: the argument cancel_fn is called with.
  void* cancel_arg = nullptr;
  /// The connection whose peer hanging up cancels this chain (Connection::set_owner). The link
  /// goes both ways and whichever of the two ends first undoes it, so a connection that outlives
  /// the task (or a task that outlives its connection) never sees a dangling pointer.
  detail::IoState* hangup_watch = nullptr;
  /// For the library (EventLoop::start_root): set on the state a root task was started with;
  /// called once that task has ended and its frame is gone, with its exception (or nullptr).
  void (*on_root_done)(CancelState& self, std::exception_ptr error) noexcept = nullptr;

  /// A chain that is not cancelled.
  CancelState() = default;
  CancelState(const CancelState&) = delete;
  CancelState& operator=(const CancelState&) = delete;
  /// Undoes the link to the connection in hangup_watch, if any.
  ~CancelState();

  /// Marks the chain cancelled and interrupts the pending operation, if any. Loop thread only.
  /// @python asyncio.Task.cancel
  void cancel() noexcept {
    cancelled = true;
    if (auto* fn = std::exchange(cancel_fn, nullptr)) fn(cancel_arg);
  }
};

namespace detail {

// ---- Flat resumption ----------------------------------------------------------------------------
// Starting an awaited task and returning to its awaiter are symmetric transfers. They keep the
// stack flat only if the compiler makes them tail calls, which GCC does only when optimising: in
// a -O0 build, 100,000 co_awaits of tasks that complete at once would nest 100,000 resume calls.
// So the loop resumes coroutines through a trampoline (resume_flat), and a transfer made under it
// hands the next coroutine to the trampoline instead of calling it. Outside a trampoline it is an
// ordinary symmetric transfer.
inline thread_local std::coroutine_handle<>* trampoline_slot = nullptr;

inline std::coroutine_handle<> transfer_to(std::coroutine_handle<> next) noexcept {
  if (trampoline_slot != nullptr && !*trampoline_slot) {
    *trampoline_slot = next;
    return std::noop_coroutine();
  }
  return next;
}

// Resumes `h`, then each coroutine control is transferred to, one after another from this frame.
inline void resume_flat(std::coroutine_handle<> h) noexcept {
  std::coroutine_handle<> next = h;
  auto* const outer = std::exchange(trampoline_slot, &next);
  while (next) std::exchange(next, {}).resume();
  trampoline_slot = outer;
}

// ---- GCC 12 and co_await in conditions ---------------------------------------------------------
// GCC before 13 (Debian 12's GCC 12.2 included) miscompiles a coroutine that declares no local
// variable and has co_await in the condition of an if, while, for or switch (GCC bug 106188):
// the variable the compiler makes to hold the condition is put at the start of the coroutine
// frame, in front of the pointer the coroutine is resumed through. The frame the coroutine's
// own code uses and the frame its handle names are then 8 bytes apart, and resuming it jumps
// into garbage: in practice the coroutine silently never runs (or crashes, or starts again).
// Nothing in an awaitable's shape can avoid it (the layout is decided before any awaitable is
// looked at; tests/compilers shows it with a trivial awaiter), and nothing in a header can see
// that a coroutine declares no local. What the library can do is notice: the handle
// get_return_object makes and the one the coroutine hands its first suspension must name the
// same frame, so a miscompiled sockserv coroutine stops the program at its first call (the
// call expression itself, before any of its body runs) with a message that names the bug and
// the work-around, instead of silently doing nothing. It cannot throw instead: the compiler
// would unwind through the same broken frame. Declaring any local variable in the coroutine
// is the work-around; GCC 13 and clang are not affected.
/// @def SOCKSERV_AIO_CHECK_COROUTINE_FRAMES
/// 1 when the compiler is GCC before 13 (bug 106188, above): sockserv's coroutines then check
/// their frame at their first call and stop the program with a message if it was miscompiled.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#define SOCKSERV_AIO_CHECK_COROUTINE_FRAMES 1
#else
#define SOCKSERV_AIO_CHECK_COROUTINE_FRAMES 0
#endif

[[noreturn]] inline void report_miscompiled_coroutine() noexcept {
  std::fputs(
      "sockserv::aio: a coroutine was miscompiled by GCC 12 (GCC bug 106188: co_await in an "
      "if/while/for/switch condition of a coroutine that declares no local variable). Declare "
      "a local variable in it, or build with GCC 13 or later or with clang.\n",
      stderr);
  std::abort();
}

struct PromiseBase {
  std::coroutine_handle<> continuation;
  CancelState* cancel_state = nullptr;
  std::exception_ptr error;

#if SOCKSERV_AIO_CHECK_COROUTINE_FRAMES
  // The frame address get_return_object's handle names (nullptr: not checked).
  const void* frame = nullptr;

  struct InitialAwaiter {
    const void* expected_frame;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> self) const noexcept {
      if (expected_frame != nullptr && self.address() != expected_frame)
        report_miscompiled_coroutine();
    }
    void await_resume() const noexcept {}
  };
  InitialAwaiter initial_suspend() const noexcept { return {frame}; }
  void remember_frame(const void* address) noexcept { frame = address; }
#else
  std::suspend_always initial_suspend() const noexcept { return {}; }
  static void remember_frame(const void* /*address*/) noexcept {}
#endif

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      auto& promise = self.promise();
      if (promise.continuation) return transfer_to(promise.continuation);
      // A root task (EventLoop::start_root) frees its own frame, then tells its owner: no
      // wrapper coroutine per connection just to notice the end.
      if (auto* owner = promise.cancel_state; owner && owner->on_root_done) {
        auto error = std::move(promise.error);
        self.destroy();
        owner->on_root_done(*owner, std::move(error));
      }
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

// The cancel state of the coroutine that is suspending, or nullptr if it is not one of ours.
template <class Promise>
CancelState* cancel_state_of(std::coroutine_handle<Promise> h) noexcept {
  if constexpr (std::is_base_of_v<PromiseBase, Promise>) {
    return h.promise().cancel_state;
  } else {
    return nullptr;
  }
}

template <class T>
struct Promise;

}  // namespace detail

/// The coroutine type of sockserv::aio: a function returning `Task<T>` may `co_await` and
/// `co_return` a T. Lazy: it starts when awaited or spawn()ed, and hands its result or exception
/// to the awaiter (so `co_await task` rethrows what the task threw). Owns its coroutine frame;
/// move-only.
/// @threadsafety A Task runs on one event loop; one thread at a time.
/// @python asyncio's coroutine objects (awaited) and asyncio.Task (spawned)
template <class T = void>
class [[nodiscard]] Task {
 public:
  /// The coroutine's promise (what makes a function returning Task a coroutine).
  using promise_type = detail::Promise<T>;
  /// What `co_await` on the task returns.
  using value_type = T;

  /// No coroutine (valid() is false).
  Task() noexcept = default;
  /// For the promise: the task owning coroutine frame `h`.
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  /// Takes over `other`'s frame; `other` is then empty.
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  /// Destroys this task's frame (if any), then takes over `other`'s.
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  /// Destroys the coroutine frame (a task not run to its end is abandoned where it stands).
  ~Task() {
    if (handle_) handle_.destroy();
  }

  /// True when the task owns a coroutine frame.
  bool valid() const noexcept { return static_cast<bool>(handle_); }
  /// True when the coroutine has finished (or there is none).
  /// @python asyncio.Task.done
  bool done() const noexcept { return !handle_ || handle_.done(); }

  /// What `co_await task` uses: starts the task, resumes the awaiter with its result.
  struct Awaiter {
    /// The awaited task's frame (still owned by the Task).
    std::coroutine_handle<promise_type> handle;
    /// The awaitable protocol, called by `co_await`. await_resume() returns the task's result
    /// or rethrows its exception.
    /// @{
    bool await_ready() const noexcept { return !handle || handle.done(); }
    template <class Parent>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Parent> parent) noexcept {
      handle.promise().continuation = parent;
      // The awaited task joins the awaiting chain's cancellation state, unless it was given its
      // own (with_timeout does that).
      if (!handle.promise().cancel_state)
        handle.promise().cancel_state = detail::cancel_state_of(parent);
      return detail::transfer_to(handle);
    }
    T await_resume() { return handle.promise().result(); }
    /// @}
  };
  /// Awaiting a task runs it to its end and gives its result (or rethrows its exception).
  /// @{
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }
  Awaiter operator co_await() & noexcept { return Awaiter{handle_}; }
  /// @}

  /// For the library: the frame, to start a root task or set its cancel state.
  std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }
  /// For the library: gives up the frame (the caller destroys it); the task is then empty.
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(handle_, {}); }

 private:
  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <class T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() noexcept {
    auto handle = std::coroutine_handle<Promise>::from_promise(*this);
    remember_frame(handle.address());
    return Task<T>(handle);
  }
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T result() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept {
    auto handle = std::coroutine_handle<Promise>::from_promise(*this);
    remember_frame(handle.address());
    return Task<void>(handle);
  }
  void return_void() noexcept {}
  void result() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail
}  // namespace sockserv::aio
