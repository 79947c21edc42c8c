// SPDX-License-Identifier: MIT
// Event: asyncio.Event for coroutines on one loop. wait() suspends until set(); set() wakes every
// waiter; clear() makes later waits suspend again. A cancelled waiter leaves with
// operation_canceled. Loop thread only.
#pragma once

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/task.hpp>

#include <coroutine>
#include <list>

namespace sockserv::aio {

class Event {
 public:
  class WaitOperation {
   public:
    explicit WaitOperation(Event& event) noexcept : event_(&event) {}
    WaitOperation(WaitOperation&& other) noexcept : event_(other.event_) {}
    WaitOperation(const WaitOperation&) = delete;
    WaitOperation& operator=(const WaitOperation&) = delete;
    ~WaitOperation() { leave(); }

    bool await_ready() const noexcept { return event_->set_; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return begin(h, detail::cancel_state_of(h));
    }
    void await_resume() const;

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

  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void set() noexcept;
  void clear() noexcept { set_ = false; }
  bool is_set() const noexcept { return set_; }
  WaitOperation wait() noexcept { return WaitOperation(*this); }

 private:
  bool set_ = false;
  std::list<WaitOperation*> waiters_;
};

}  // namespace sockserv::aio
