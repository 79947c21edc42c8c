// SPDX-License-Identifier: MIT
// Internal bookkeeping shared by EventLoop and its awaitables. Not part of the API: the names
// may change in any release.
//
//   IoState    one registered descriptor: who waits to read, who waits to write
//   IoWaiter   one suspended operation (lives in the suspended coroutine's frame)
//   TimerNode  one armed deadline in the loop's timer heap (intrusive: no allocation)
#pragma once

#include <sockserv/aio/task.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace sockserv::aio {
class EventLoop;
}

namespace sockserv::aio::detail {

using Clock = std::chrono::steady_clock;

// 24 bytes (every connection has one): 32-bit index and sequence.
struct TimerNode {
  static constexpr std::uint32_t not_armed = std::numeric_limits<std::uint32_t>::max();
  Clock::time_point deadline{};
  // Ties are broken by arming order, compared as a wrapping difference: exact while the timers
  // with one deadline were armed fewer than 2^31 arms apart.
  std::uint32_t sequence = 0;
  std::uint32_t heap_index = not_armed;
  void (*fire)(TimerNode*) = nullptr;
  bool armed() const noexcept { return heap_index != not_armed; }
};

struct IoState;

// Small on purpose: it lives in the frame of every coroutine suspended in an operation, and an
// idle connection's handler is one.
struct IoWaiter {
  std::coroutine_handle<> handle;
  IoState* state = nullptr;
  CancelState* cancel = nullptr;
  // Attempts the operation when the descriptor is reported ready; true when it is complete (the
  // waiter is resumed), false when the report was stale (EAGAIN: keep waiting). Edge-triggered
  // epoll can deliver an edge for data an earlier attempt already consumed, so readiness alone
  // never completes an operation. nullptr: readiness is the result (the waiter just resumes).
  bool (*perform)(IoWaiter& self) = nullptr;
  Clock::time_point deadline = Clock::time_point::max();  // max: no timeout
  std::int16_t error = 0;  // set on resume: 0 = ready, ECANCELED, ETIMEDOUT
  bool is_reader = true;
  // (An operation's own fields pack into the 5 bytes left here.)
};

struct IoState {
  int fd = -1;
  unsigned interest = 0;        // level-triggered: the events currently registered
  bool edge_triggered = false;  // registered once for both directions (connections, listeners)
  bool hung_up = false;         // the kernel reported HUP/ERR
  bool exclusive = false;       // a listener shared by several loops: wake only one (epoll)
  // False after a read came back short or with EAGAIN: the kernel had nothing more, and the next
  // read event (an edge, with epoll) sets it again. A read while it is false would only fail
  // with EAGAIN, so it is skipped - one syscall less per message in a ping-pong.
  bool maybe_readable = true;
  bool read_closed = false;   // the peer's FIN (or an error) was seen: never skip a read again
  bool has_callback = false;  // a CallbackIoState: the loop calls on_ready, not waiters
  // The backend receives for this state (io_uring's multishot recv into its buffer ring): its
  // bytes come from Reactor::take_into/take_lease, never from recv(2).
  bool completion_reads = false;
  // Never so: something else reads the socket (a TLS layer).
  bool syscall_reads = false;
  EventLoop* loop = nullptr;  // set by EventLoop::add_io
  IoWaiter* reader = nullptr;
  IoWaiter* writer = nullptr;
  CancelState* owner = nullptr;  // cancelled when the peer hangs up while nobody waits on I/O
  // The backend's handle: the poll backend's index, the io_uring backend's completion id.
  std::uint64_t backend_slot = 0;
  // The waiters' timeouts share one timer, armed lazily: it is left armed when an operation
  // completes and moved only when it fires early, so an operation with a timeout costs no timer
  // heap work in the common case that it completes in time (EventLoop::wait_io).
  TimerNode deadline_timer;
};

// A descriptor that is not a connection (add_reader watches, the loop's wake-up eventfd): the
// loop calls on_ready instead of resuming waiters. Apart, so connections do not carry it.
struct CallbackIoState : IoState {
  explicit CallbackIoState(void (*callback)(CallbackIoState& state, unsigned events,
                                            EventLoop& loop)) noexcept
      : on_ready(callback) {
    has_callback = true;
  }
  void (*on_ready)(CallbackIoState& state, unsigned events, EventLoop& loop);
};

struct ReadyIo {
  IoState* state;
  unsigned events;
};

}  // namespace sockserv::aio::detail
