// SPDX-License-Identifier: MIT
#include <sockserv/aio/timeout.hpp>

namespace sockserv::aio::detail {

bool SleepOperation::begin(std::coroutine_handle<> h, CancelState* cancel) {
  loop_ = EventLoop::current();
  if (!loop_) throw std::logic_error("sleep: no event loop runs on this thread");
  if (cancel && cancel->cancelled) {
    cancelled_ = true;
    return false;
  }
  handle_ = h;
  cancel_ = cancel;
  fire = [](TimerNode* node) {
    auto& self = static_cast<SleepOperation&>(*node);
    self.stop();
    self.loop_->resume_soon(self.handle_);
  };
  loop_->arm(*this, until_);
  if (cancel_) {
    cancel_->cancel_fn = [](void* arg) {
      auto& self = *static_cast<SleepOperation*>(arg);
      self.cancelled_ = true;
      self.stop();
      self.loop_->resume_soon(self.handle_);
    };
    cancel_->cancel_arg = this;
  }
  return true;
}

void SleepOperation::stop() noexcept {
  if (loop_ && armed()) loop_->disarm(*this);
  if (cancel_ && cancel_->cancel_arg == this) {
    cancel_->cancel_fn = nullptr;
    cancel_->cancel_arg = nullptr;
  }
}

Deadline::Deadline(std::chrono::nanoseconds timeout, CancelState* parent)
    : loop_(EventLoop::current()), parent_(parent) {
  if (!loop_) throw std::logic_error("with_timeout: no event loop runs on this thread");
  fire = [](TimerNode* node) {
    auto& self = static_cast<Deadline&>(*node);
    self.expired_ = true;
    self.child.cancel();
  };
  loop_->arm(*this, Clock::now() + timeout);
  if (parent_) {
    if (parent_->cancelled) child.cancelled = true;
    // While the outer task waits for the inner one, the outer task's cancellation slot is free:
    // cancelling the outer task cancels the inner one.
    parent_->cancel_fn = [](void* arg) { static_cast<Deadline*>(arg)->child.cancel(); };
    parent_->cancel_arg = this;
  }
}

Deadline::~Deadline() {
  if (armed()) loop_->disarm(*this);
  if (parent_ && parent_->cancel_arg == this) {
    parent_->cancel_fn = nullptr;
    parent_->cancel_arg = nullptr;
  }
}

}  // namespace sockserv::aio::detail
