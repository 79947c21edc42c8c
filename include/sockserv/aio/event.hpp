// SPDX-License-Identifier: MIT
/// @file
/// Event: asyncio.Event for coroutines on one loop. wait() suspends until set(); set() wakes every
/// waiter; clear() makes later waits suspend again. A cancelled waiter leaves with
/// operation_canceled. Loop thread only.
#pragma once

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/task.hpp>

#include <coroutine>
#include <list>

namespace sockserv::aio {

/// A flag coroutines can wait for: wait() suspends until set(); set() wakes every waiter;
/// clear() makes later waits suspend again.
/// @threadsafety Loop thread only (every waiter and setter on the same event loop).
/// @python asyncio.Event
class Event {
 public:
  /// The awaitable wait() returns; `co_await` it where it is made.
  class WaitOperation {
   public:
    /// A wait for `event` (what wait() makes).
    explicit WaitOperation(Event& event) noexcept : event_(&event) {}
    /// Movable until it is awaited.
    WaitOperation(WaitOperation&& other) noexcept : event_(other.event_) {}
    WaitOperation(const WaitOperation&) = delete;
    WaitOperation& operator=(const WaitOperation&) = delete;
    /// Leaves the event's waiters if still among them.
    ~WaitOperation() { leave(); }

    /// The awaitable protocol, called by `co_await`: completes at once when the event is set,
    /// else suspends until set() or a cancellation.
    /// @throws std::logic_error (from `co_await`) when no event loop runs on this thread.
    /// @throws SocketError with std::errc::operation_canceled (from `co_await`) when the task is
    ///         cancelled.
    /// @{
    bool await_ready() const noexcept { return event_->set_; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return begin(h, detail::cancel_state_of(h));
    }
    void await_resume() const;
    /// @}

   private:
    friend class Event;
    bool begin(std::coroutine_handle<> h, CancelState* cancel);
    void leave() noexcept;
    void wake(bool cancelled) noexcept;

    Event* event_;
    std::coroutine_handle<> handle_;
    CancelState* cancel_ = nullptr;
    EventLoop* loop_ = nullptr;
    std::list<WaitOperation*>::iterator position_;
    bool waiting_ = false;
    bool cancelled_ = false;
  };

  /// An event that is not set.
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Sets the flag and wakes every waiting coroutine (they resume on a later loop iteration).
  /// @python asyncio.Event.set
  void set() noexcept;
  /// Clears the flag: later waits suspend until the next set().
  /// @python asyncio.Event.clear
  void clear() noexcept { set_ = false; }
  /// True when the flag is set.
  /// @python asyncio.Event.is_set
  bool is_set() const noexcept { return set_; }
  /// An awaitable that completes once the flag is set (at once if it already is).
  /// @throws SocketError with std::errc::operation_canceled (from `co_await`) when the task is
  ///         cancelled while it waits.
  /// @throws std::logic_error (from `co_await`) when no event loop runs on this thread.
  /// @python asyncio.Event.wait
  WaitOperation wait() noexcept { return WaitOperation(*this); }

 private:
  bool set_ = false;
  std::list<WaitOperation*> waiters_;
};

}  // namespace sockserv::aio
