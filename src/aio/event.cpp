// SPDX-License-Identifier: MIT
#include <sockserv/aio/event.hpp>
#include <sockserv/error.hpp>

#include <stdexcept>

namespace sockserv::aio {

void Event::set() noexcept {
  set_ = true;
  // wake() unlinks each waiter, so take the list first.
  auto waiting = std::move(waiters_);
  waiters_.clear();
  for (auto* w : waiting) {
    w->waiting_ = false;
    w->wake(false);
  }
}

bool Event::WaitOperation::begin(std::coroutine_handle<> h, CancelState* cancel) {
  loop_ = EventLoop::current();
  if (!loop_) throw std::logic_error("Event::wait: no event loop runs on this thread");
  if (cancel && cancel->cancelled) {
    cancelled_ = true;
    return false;
  }
  handle_ = h;
  cancel_ = cancel;
  position_ = event_->waiters_.insert(event_->waiters_.end(), this);
  waiting_ = true;
  if (cancel_) {
    cancel_->cancel_fn = [](void* arg) { static_cast<WaitOperation*>(arg)->wake(true); };
    cancel_->cancel_arg = this;
  }
  return true;
}

void Event::WaitOperation::leave() noexcept {
  if (waiting_) event_->waiters_.erase(position_);
  waiting_ = false;
  if (cancel_ && cancel_->cancel_arg == this) {
    cancel_->cancel_fn = nullptr;
    cancel_->cancel_arg = nullptr;
  }
}

void Event::WaitOperation::wake(bool cancelled) noexcept {
  cancelled_ = cancelled;
  leave();
  loop_->resume_soon(handle_);
}

void Event::WaitOperation::await_resume() const {
  if (cancelled_) throw_error(std::make_error_code(std::errc::operation_canceled), "Event::wait");
}

}  // namespace sockserv::aio
