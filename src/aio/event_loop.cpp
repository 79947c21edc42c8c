// SPDX-License-Identifier: MIT
#include <sockserv/aio/event_loop.hpp>
#include <sockserv/error.hpp>

#include "aio/reactor.hpp"
#include "sys/report.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstddef>

namespace sockserv::aio {

using detail::IoState;
using detail::IoWaiter;
using detail::TimerNode;

namespace {

thread_local EventLoop* current_loop = nullptr;

// ---- Detached tasks ---------------------------------------------------------------------------
// spawn() wraps the task in a root coroutine that owns the chain's CancelState (unless the
// caller supplies one), reports the task's exception, and destroys itself at the end. The loop
// lists its live roots, so destroying the loop destroys what never finished.
struct DetachedPromise;

struct Detached {
  using promise_type = DetachedPromise;
  std::coroutine_handle<DetachedPromise> handle;
};

struct DetachedPromise : detail::PromiseBase {
  CancelState own_state;
  std::list<std::coroutine_handle<>>* roots = nullptr;
  std::list<std::coroutine_handle<>>::iterator position;
  DetachedPromise() noexcept { cancel_state = &own_state; }
  Detached get_return_object() noexcept {
    return {std::coroutine_handle<DetachedPromise>::from_promise(*this)};
  }
  std::suspend_never final_suspend() noexcept {
    if (roots) roots->erase(position);
    return {};
  }
  void return_void() noexcept {}
};

Detached run_detached(Task<void> task, EventLoop* loop) {
  try {
    co_await std::move(task);
  } catch (...) {
    const auto error = std::current_exception();
    if (loop->exception_handler) {
      loop->exception_handler(error);
    } else {
      sys::report_exception("Exception in a detached task", error);
    }
  }
}

IoState& state_of(TimerNode* node) noexcept {
  return *reinterpret_cast<IoState*>(reinterpret_cast<char*>(node) -
                                     offsetof(IoState, deadline_timer));
}

bool heap_less(const TimerNode* a, const TimerNode* b) noexcept {
  return a->deadline < b->deadline ||
         (a->deadline == b->deadline && static_cast<std::int32_t>(a->sequence - b->sequence) < 0);
}

// Puts node `i` of the timer heap in its place's index (a TimerNode keeps 32 bits of it).
void place(std::vector<TimerNode*>& heap, std::size_t i) noexcept {
  heap[i]->heap_index = static_cast<std::uint32_t>(i);
}

}  // namespace

struct EventLoop::Watch {
  explicit Watch(int fd) : state(&on_ready) { state.fd = fd; }
  // The callbacks may remove the watch: copy them out before calling.
  static void on_ready(detail::CallbackIoState& state, unsigned events, EventLoop& loop) {
    const auto it = loop.watches_.find(state.fd);
    if (it == loop.watches_.end()) return;
    auto on_read = it->second->on_read;
    auto on_write = it->second->on_write;
    if ((events & detail::io_read) && on_read) loop.call_soon(std::move(on_read));
    if ((events & detail::io_write) && on_write) loop.call_soon(std::move(on_write));
  }
  detail::CallbackIoState state;
  std::function<void()> on_read;
  std::function<void()> on_write;
};

struct TimerHandle::Entry : TimerNode {
  std::function<void()> callback;
  std::shared_ptr<Entry> self;  // keeps the entry alive while it is armed
  bool cancelled = false;

  // The deadline passed: queue the callback. It still checks `cancelled` when it runs, since a
  // callback that ran before it in the same iteration may have cancelled it.
  static void on_fire(TimerNode* node) {
    auto* e = static_cast<Entry*>(node);
    auto keep = std::move(e->self);  // the entry lives until the callback has run
    if (auto* loop = EventLoop::current()) {
      loop->call_soon([entry = std::move(keep)] {
        if (entry->cancelled) return;
        auto callback = std::move(entry->callback);
        callback();
      });
    }
  }
};

EventLoop::EventLoop(Backend backend)
    : backend_(backend),
      reactor_(detail::make_reactor(backend_)),
      wakeup_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      thread_(std::this_thread::get_id()) {
  if (wakeup_fd_ < 0) throw_errno("eventfd");
  wakeup_state_ = std::make_unique<detail::CallbackIoState>(
      [](detail::CallbackIoState&, unsigned, EventLoop& loop) { loop.drain_threadsafe_queue(); });
  wakeup_state_->fd = wakeup_fd_;
  wakeup_state_->interest = detail::io_read;
  if (const auto ec = reactor_->add(*wakeup_state_)) {
    ::close(wakeup_fd_);
    throw_error(ec, "EventLoop: register the wake-up eventfd");
  }
}

EventLoop::~EventLoop() {
  // Unfinished detached tasks are destroyed: their frames' destructors close their sockets.
  EventLoop* const previous = std::exchange(current_loop, this);
  while (!roots_.empty()) {
    auto handle = roots_.front();
    roots_.pop_front();
    handle.destroy();
  }
  current_loop = previous;
  // call_later() entries keep themselves alive while armed: release them.
  for (auto* node : std::exchange(timers_, {})) {
    node->heap_index = TimerNode::not_armed;
    if (node->fire == &TimerHandle::Entry::on_fire)
      static_cast<TimerHandle::Entry*>(node)->self.reset();
  }
  for (auto& [fd, watch] : watches_) reactor_->remove(watch->state);
  reactor_->remove(*wakeup_state_);
  ::close(wakeup_fd_);
}

CancelState::~CancelState() {
  if (hangup_watch && hangup_watch->owner == this) hangup_watch->owner = nullptr;
}

EventLoop* EventLoop::current() noexcept { return current_loop; }

bool EventLoop::in_loop_thread() const noexcept {
  return !running_ || thread_ == std::this_thread::get_id();
}

void EventLoop::call_soon(std::function<void()> callback) {
  assert(in_loop_thread());
  callbacks_.push_back(std::move(callback));
}

TimerHandle EventLoop::call_later(std::chrono::nanoseconds delay, std::function<void()> callback) {
  return call_at(Clock::now() + delay, std::move(callback));
}

TimerHandle EventLoop::call_at(Clock::time_point when, std::function<void()> callback) {
  assert(in_loop_thread());
  auto entry = std::make_shared<TimerHandle::Entry>();
  entry->callback = std::move(callback);
  entry->fire = &TimerHandle::Entry::on_fire;
  entry->self = entry;
  arm(*entry, when);
  return TimerHandle(this, std::move(entry));
}

void TimerHandle::cancel() noexcept {
  if (!entry_) return;
  entry_->cancelled = true;
  if (!entry_->armed()) return;
  loop_->disarm(*entry_);
  entry_->self.reset();
}

bool TimerHandle::active() const noexcept { return entry_ && entry_->armed(); }

void EventLoop::call_soon_threadsafe(std::function<void()> callback) {
  // The wake-up is written while the lock is held: the loop takes the callback under the same
  // lock, so once it can run (and, say, resume a to_thread() caller whose task ends and whose
  // loop is destroyed) this thread no longer touches the loop or its eventfd.
  std::lock_guard lock(threadsafe_mutex_);
  threadsafe_queue_.push_back(std::move(callback));
  // One eventfd write per batch: later callers see the wake-up already pending.
  if (!wake_pending_.exchange(true)) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wakeup_fd_, &one, sizeof one);
  }
}

void EventLoop::stop_threadsafe() {
  call_soon_threadsafe([this] { stop(); });
}

void EventLoop::drain_threadsafe_queue() {
  std::uint64_t count;
  [[maybe_unused]] const auto n = ::read(wakeup_fd_, &count, sizeof count);
  wake_pending_ = false;
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(threadsafe_mutex_);
    batch.swap(threadsafe_queue_);
  }
  for (auto& callback : batch) callbacks_.push_back(std::move(callback));
}

// ---- Readiness callbacks (add_reader / add_writer)
// -----------------------------------------------

void EventLoop::add_reader(int fd, std::function<void()> callback) {
  assert(in_loop_thread());
  auto& watch = watches_[fd];
  const bool is_new = !watch;
  if (is_new) {
    watch = std::make_unique<Watch>(fd);
  }
  watch->on_read = std::move(callback);
  watch->state.interest |= detail::io_read;
  const auto ec = is_new ? reactor_->add(watch->state) : reactor_->update(watch->state);
  if (ec) {
    watches_.erase(fd);
    throw_error(ec, "add_reader", "fd " + std::to_string(fd));
  }
}

void EventLoop::add_writer(int fd, std::function<void()> callback) {
  assert(in_loop_thread());
  if (!watches_.contains(fd)) add_reader(fd, nullptr);  // creates the watch; interest set below
  auto& watch = watches_.at(fd);
  watch->on_write = std::move(callback);
  watch->state.interest = detail::io_write | (watch->on_read ? detail::io_read : 0u);
  if (const auto ec = reactor_->update(watch->state)) throw_error(ec, "add_writer");
}

bool EventLoop::remove_reader(int fd) {
  const auto it = watches_.find(fd);
  if (it == watches_.end() || !(it->second->state.interest & detail::io_read)) return false;
  it->second->on_read = nullptr;
  it->second->state.interest &= ~detail::io_read;
  if (it->second->state.interest == 0) {
    reactor_->remove(it->second->state);
    watches_.erase(it);
  } else {
    (void)reactor_->update(it->second->state);
  }
  return true;
}

bool EventLoop::remove_writer(int fd) {
  const auto it = watches_.find(fd);
  if (it == watches_.end() || !(it->second->state.interest & detail::io_write)) return false;
  it->second->on_write = nullptr;
  it->second->state.interest &= ~detail::io_write;
  if (it->second->state.interest == 0) {
    reactor_->remove(it->second->state);
    watches_.erase(it);
  } else {
    (void)reactor_->update(it->second->state);
  }
  return true;
}

// ---- Tasks -------------------------------------------------------------------------------------

void EventLoop::spawn(Task<void> task, CancelState* cancel_state) {
  assert(in_loop_thread());
  auto root = run_detached(std::move(task), this).handle;
  auto& promise = root.promise();
  if (cancel_state) promise.cancel_state = cancel_state;
  promise.roots = &roots_;
  promise.position = roots_.insert(roots_.end(), root);
  resume_soon(root);
}

std::coroutine_handle<> EventLoop::start_root(Task<void> task, CancelState& owner) {
  assert(in_loop_thread() && owner.on_root_done);
  auto root = task.release();
  if (!root) throw std::invalid_argument("start_root: the task is empty");
  root.promise().cancel_state = &owner;
  resume_soon(root);
  return root;
}

void spawn(Task<void> task) {
  auto* loop = EventLoop::current();
  if (!loop) throw std::logic_error("spawn: no event loop runs on this thread");
  loop->spawn(std::move(task));
}

// ---- I/O waiting -------------------------------------------------------------------------------

void EventLoop::add_io(IoState& state) {
  state.loop = this;
  if (const auto ec = reactor_->add(state))
    throw_error(ec, "EventLoop: register", "fd " + std::to_string(state.fd));
}

void EventLoop::remove_io(IoState& state) noexcept {
  disarm(state.deadline_timer);
  reactor_->remove(state);
}

void EventLoop::update_interest(IoState& state) {
  if (state.has_callback) return;
  const bool writes_on_demand = state.edge_triggered && reactor_->writes_on_demand();
  if (!reactor_->level_only() && !writes_on_demand) return;
  const unsigned want =
      (state.reader ? detail::io_read : 0u) | (state.writer ? detail::io_write : 0u);
  // Always told, even when the interest is unchanged: one-shot polls must be re-armed after
  // each report (poll's update is a cheap store).
  state.interest = want;
  (void)reactor_->update(state);
}

void EventLoop::finish_wait(IoWaiter& waiter, int error) noexcept {
  waiter.error = static_cast<std::int16_t>(error);
  if (waiter.cancel && waiter.cancel->cancel_arg == &waiter) {
    waiter.cancel->cancel_fn = nullptr;
    waiter.cancel->cancel_arg = nullptr;
  }
  waiter.state->loop->resume_soon(waiter.handle);
}

void EventLoop::abandon_wait(IoWaiter& waiter, int error) noexcept {
  auto& slot = waiter.is_reader ? waiter.state->reader : waiter.state->writer;
  if (slot == &waiter) slot = nullptr;
  waiter.state->loop->update_interest(*waiter.state);
  finish_wait(waiter, error);
}

void EventLoop::forget_wait(IoWaiter& waiter) noexcept {
  if (!waiter.state) return;
  auto& slot = waiter.is_reader ? waiter.state->reader : waiter.state->writer;
  if (slot != &waiter) return;
  slot = nullptr;
  if (waiter.cancel && waiter.cancel->cancel_arg == &waiter) {
    waiter.cancel->cancel_fn = nullptr;
    waiter.cancel->cancel_arg = nullptr;
  }
}

void EventLoop::on_io_deadline(TimerNode* node) {
  // Times out the waiters whose deadline has passed, then moves the timer to the next deadline
  // of those still waiting (it fired early if their operations completed and new ones began).
  IoState& state = state_of(node);
  const auto now = Clock::now();
  for (IoWaiter* waiter : {state.reader, state.writer}) {
    if (waiter && waiter->deadline <= now) abandon_wait(*waiter, ETIMEDOUT);
  }
  auto next = Clock::time_point::max();
  for (const IoWaiter* waiter : {state.reader, state.writer}) {
    if (waiter) next = std::min(next, waiter->deadline);
  }
  if (next != Clock::time_point::max()) state.loop->arm(state.deadline_timer, next);
}

bool EventLoop::wait_io(IoWaiter& waiter, std::optional<Clock::time_point> deadline) {
  if (waiter.cancel && waiter.cancel->cancelled) {
    waiter.error = ECANCELED;
    return false;
  }
  auto& state = *waiter.state;
  assert(state.loop == this);
  waiter.error = 0;
  (waiter.is_reader ? state.reader : state.writer) = &waiter;
  waiter.deadline = deadline.value_or(Clock::time_point::max());
  // Lazily: a timer already due no later than this deadline stays as it is (see on_io_deadline).
  auto& timer = state.deadline_timer;
  if (deadline && (!timer.armed() || *deadline < timer.deadline)) {
    timer.fire = &EventLoop::on_io_deadline;
    arm(timer, *deadline);
  }
  if (waiter.cancel) {
    waiter.cancel->cancel_fn = [](void* arg) {
      abandon_wait(*static_cast<IoWaiter*>(arg), ECANCELED);
    };
    waiter.cancel->cancel_arg = &waiter;
  }
  update_interest(state);
  return true;
}

void EventLoop::shorten_io_deadline(IoWaiter& waiter, Clock::time_point deadline) {
  if (deadline >= waiter.deadline) return;
  waiter.deadline = deadline;
  auto& timer = waiter.state->deadline_timer;
  if (!timer.armed() || deadline < timer.deadline) {
    timer.fire = &EventLoop::on_io_deadline;
    arm(timer, deadline);
  }
}

void EventLoop::dispatch(IoState& state, unsigned events) {
  if (state.has_callback) {
    auto& callback = static_cast<detail::CallbackIoState&>(state);
    callback.on_ready(callback, events, *this);
    reactor_->rearm(state);
    return;
  }
  const bool had_waiter = state.reader || state.writer;
  if (events & detail::io_hangup) state.hung_up = true;
  if (events & detail::io_read) state.maybe_readable = true;
  // After the peer's FIN there are no more edges: reads must never be skipped again (the next
  // one returns EOF).
  if (events & (detail::io_peer_closed | detail::io_hangup)) state.read_closed = true;
  // Each ready waiter performs its operation now; only a complete one is resumed.
  auto complete = [](IoWaiter* w) { return w->perform == nullptr || w->perform(*w); };
  if ((events & detail::io_read) && state.reader && complete(state.reader)) {
    finish_wait(*std::exchange(state.reader, nullptr), 0);
  }
  if ((events & detail::io_write) && state.writer && complete(state.writer)) {
    finish_wait(*std::exchange(state.writer, nullptr), 0);
  }
  // The peer vanished while the task was busy elsewhere (sleeping, in to_thread): cancel it
  // rather than let it work for nobody.
  if ((events & detail::io_hangup) && !had_waiter && state.owner) {
    state.owner->peer_gone = true;
    state.owner->cancel();
  }
  update_interest(state);
}

// ---- Timers: a binary min-heap of intrusive nodes
// ------------------------------------------------

void EventLoop::arm(TimerNode& node, Clock::time_point deadline) {
  if (node.armed()) disarm(node);
  node.deadline = deadline;
  node.sequence = ++timer_sequence_;
  timers_.push_back(&node);
  place(timers_, timers_.size() - 1);
  heap_up(node.heap_index);
}

void EventLoop::disarm(TimerNode& node) noexcept {
  if (node.armed()) heap_remove(node.heap_index);
}

void EventLoop::heap_up(std::size_t i) noexcept {
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!heap_less(timers_[i], timers_[parent])) break;
    std::swap(timers_[i], timers_[parent]);
    place(timers_, i);
    place(timers_, parent);
    i = parent;
  }
}

void EventLoop::heap_down(std::size_t i) noexcept {
  for (;;) {
    std::size_t smallest = i;
    for (const std::size_t child : {2 * i + 1, 2 * i + 2}) {
      if (child < timers_.size() && heap_less(timers_[child], timers_[smallest])) smallest = child;
    }
    if (smallest == i) return;
    std::swap(timers_[i], timers_[smallest]);
    place(timers_, i);
    place(timers_, smallest);
    i = smallest;
  }
}

void EventLoop::heap_remove(std::size_t i) noexcept {
  timers_[i]->heap_index = TimerNode::not_armed;
  const std::size_t last = timers_.size() - 1;
  if (i != last) {
    timers_[i] = timers_[last];
    place(timers_, i);
  }
  timers_.pop_back();
  if (i < timers_.size()) {
    heap_up(i);
    heap_down(timers_[i]->heap_index);
  }
}

void EventLoop::fire_timers() {
  const auto now = Clock::now();
  while (!timers_.empty() && timers_.front()->deadline <= now) {
    TimerNode* node = timers_.front();
    heap_remove(0);
    node->fire(node);
  }
}

// ---- The loop
// ------------------------------------------------------------------------------------

void EventLoop::run_ready() {
  // Only what was ready when this step began runs now; what it makes ready waits for the next
  // iteration, after the next poll for I/O. The vectors swap roles, keeping their capacity.
  running_handles_.swap(ready_);
  running_callbacks_.swap(callbacks_);
  for (auto h : running_handles_) {
    refill_budget();  // each coroutine the loop resumes gets a fresh budget
    detail::resume_flat(h);
  }
  running_handles_.clear();
  for (auto& callback : running_callbacks_) {
    try {
      callback();
    } catch (...) {
      const auto error = std::current_exception();
      if (exception_handler) {
        exception_handler(error);
      } else {
        sys::report_exception("Exception in an event loop callback", error);
      }
    }
  }
  running_callbacks_.clear();
}

EventLoop::ReceiveCounters EventLoop::receive_counters() const noexcept {
  return reactor_->receive_counters();
}

void EventLoop::run_once() {
  int timeout_ms = -1;
  if (!ready_.empty() || !callbacks_.empty() || stopping_) {
    timeout_ms = 0;
  } else if (!timers_.empty()) {
    const auto left = timers_.front()->deadline - Clock::now();
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    timeout_ms = ms <= 0 ? 0 : static_cast<int>(std::min<long long>(ms, 1 << 30));
  }
  io_events_.clear();
  if (const auto ec = reactor_->wait(timeout_ms, io_events_)) throw_error(ec, "EventLoop: wait");
  for (const auto& [state, ev] : io_events_) dispatch(*state, ev);
  fire_timers();
  run_ready();
}

void EventLoop::run_forever() {
  if (current_loop != nullptr)
    throw std::logic_error("run_forever: this thread already runs a loop");
  current_loop = this;
  thread_ = std::this_thread::get_id();
  running_ = true;
  stopping_ = false;
  struct Reset {
    EventLoop* loop;
    ~Reset() {
      current_loop = nullptr;
      loop->running_ = false;
      loop->stopping_ = false;
    }
  } reset{this};
  while (!stopping_) run_once();
}

}  // namespace sockserv::aio
