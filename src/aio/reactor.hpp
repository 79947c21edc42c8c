// SPDX-License-Identifier: MIT
// Reactor: the event loop's private I/O backend. It reports readiness per IoState; the loop
// decides what to resume. Chosen in make_reactor() (reactor.cpp), the one place that knows them.
#pragma once

#include <sockserv/aio/buffer_lease.hpp>
#include <sockserv/aio/detail/io_state.hpp>
#include <sockserv/aio/event_loop.hpp>

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace sockserv::aio::detail {

inline constexpr unsigned io_read = 1;
inline constexpr unsigned io_write = 2;
inline constexpr unsigned io_hangup = 4;       // HUP or ERR: the connection is gone
inline constexpr unsigned io_peer_closed = 8;  // RDHUP: the peer will send nothing more (EOF)

class Reactor {
 public:
  virtual ~Reactor() = default;
  // Edge-triggered states are registered for read and write once; level-triggered ones with
  // their current `interest`.
  virtual std::error_code add(IoState& state) noexcept = 0;
  // A level-triggered state's interest changed (edge-triggered: nothing to do).
  virtual std::error_code update(IoState& state) noexcept = 0;
  virtual void remove(IoState& state) noexcept = 0;
  // Waits up to timeout_ms (-1: no limit) and appends what is ready. EINTR returns nothing.
  virtual std::error_code wait(int timeout_ms, std::vector<ReadyIo>& out) noexcept = 0;
  // Whether interest must follow the waiters (true for poll: it has no edge-triggered mode).
  virtual bool level_only() const noexcept = 0;
  // After a level-triggered state's report was handled: a backend whose polls are one-shot
  // arms the next one here.
  virtual void rearm(IoState& state) noexcept { (void)state; }
  // True when an edge-triggered state reports writability only while a writer waits: the loop
  // then calls update() with the state's interest as its waiters change.
  virtual bool writes_on_demand() const noexcept { return false; }

  // --- Completion-based receiving (io_uring) ------------------------------------------------
  virtual EventLoop::ReceiveCounters receive_counters() const noexcept { return {}; }
  // A backend that can receive for an edge-triggered state itself, into buffers of its own,
  // posting io_read as bytes arrive. The connection asks for it the first time a read would
  // wait (start_receiving); from then on it takes its bytes with take_into/take_lease.
  virtual bool can_receive() const noexcept { return false; }
  // False when the backend cannot (the state stays on readiness and recv(2)).
  virtual bool start_receiving(IoState& state) noexcept {
    (void)state;
    return false;
  }
  // Up to into.size() received bytes, copied: the count, 0 at EOF, or -1 with errno (EAGAIN:
  // nothing yet, and the state will be reported readable when there is).
  virtual ssize_t take_into(IoState& state, std::span<char> into) noexcept {
    (void)state;
    (void)into;
    errno = EAGAIN;
    return -1;
  }
  // Sending by completion: the send goes into the submission queue and out with the loop's
  // next wait (one io_uring_enter for every connection's sends and the wait). io_write is
  // reported when it completes; take_send_result() then gives the bytes sent or -errno.
  virtual bool can_send() const noexcept { return false; }
  virtual bool submit_send(IoState& state, std::string_view data) noexcept {
    (void)state;
    (void)data;
    return false;
  }
  // The completed send's result; false while it is in flight.
  virtual bool take_send_result(IoState& state, int& result) noexcept {
    (void)state;
    (void)result;
    return false;
  }
  // Cancels the send in flight and returns when the kernel no longer reads its bytes.
  virtual void cancel_send(IoState& state) noexcept { (void)state; }
  // Accepting by completion: a listener's connections come from a multishot accept the
  // backend keeps armed (start_accepting is cheap when it is), each reported as io_read and
  // taken with take_accepted (a descriptor, or -1 with errno: EAGAIN when none is queued).
  // stop_accepting cancels it while the server is at its connection limit.
  virtual bool can_accept() const noexcept { return false; }
  virtual void start_accepting(IoState& listener) noexcept { (void)listener; }
  virtual void stop_accepting(IoState& listener) noexcept { (void)listener; }
  virtual int take_accepted(IoState& listener) noexcept {
    (void)listener;
    errno = EAGAIN;
    return -1;
  }
  // The next received chunk as a lease of the backend's own buffer (zero copy), when there is
  // one of at most `max` bytes; false otherwise (the caller copies with take_into).
  virtual bool take_lease(IoState& state, std::size_t max, BufferLease& out) noexcept {
    (void)state;
    (void)max;
    (void)out;
    return false;
  }
};

std::unique_ptr<Reactor> make_epoll_reactor();
std::unique_ptr<Reactor> make_poll_reactor();
// Throws SocketError when io_uring is not built in or the kernel refuses it.
std::unique_ptr<Reactor> make_uring_reactor();
std::unique_ptr<Reactor> make_reactor(EventLoop::Backend& backend);

}  // namespace sockserv::aio::detail
