// SPDX-License-Identifier: MIT
// The io_uring backend (built when liburing is found at configure time; chosen with
// EventLoop::Backend::io_uring or SOCKSERV_POLLER=io_uring).
//
// It uses io_uring as a readiness source: one-shot IORING_OP_POLL_ADD requests, armed while a
// waiter wants a direction (interest follows the waiters, as with poll), so the connection code
// is shared with the other backends. Completions carry an id, not a pointer: a poll still in
// flight when its descriptor is removed completes later against an id that no longer exists
// and is ignored, so it can never touch freed memory.
//
// A connection nobody waits on has no read or write poll armed, so each one also keeps a
// hang-up watch (a poll for no event but the ones always reported: HUP, ERR, RDHUP). It reports
// a peer that vanished while its task was busy elsewhere, as epoll does, so the task can be
// cancelled; after the peer's orderly FIN it only records the half-close and is not re-armed.
#include "aio/reactor.hpp"

#include <sockserv/error.hpp>

#include <liburing.h>
#include <poll.h>

#include <cerrno>
#include <cstdint>
#include <unordered_map>

namespace sockserv::aio::detail {
namespace {

// The low two bits of user_data say which poll completed; the rest is the state's id.
constexpr std::uint64_t kind_read = 0;
constexpr std::uint64_t kind_write = 1;
constexpr std::uint64_t kind_hangup = 2;
constexpr std::uint64_t kind_bits = 2;

class UringReactor final : public Reactor {
 public:
  UringReactor() {
    if (const int rc = ::io_uring_queue_init(1024, &ring_, 0); rc < 0) {
      throw_error({-rc, std::generic_category()}, "io_uring_queue_init");
    }
  }
  ~UringReactor() override { ::io_uring_queue_exit(&ring_); }

  std::error_code add(IoState& state) noexcept override {
    state.backend_slot = next_id_++;
    entries_[state.backend_slot] = Entry{&state, false, false, false, false};
    return update(state);
  }

  std::error_code update(IoState& state) noexcept override {
    const auto it = entries_.find(state.backend_slot);
    if (it == entries_.end()) return {};
    Entry& e = it->second;
    // A hung-up descriptor with nobody waiting is left alone, or it would complete at once
    // forever.
    if (state.hung_up && state.interest == 0) return {};
    if ((state.interest & io_read) && !e.read_armed) {
      if (const auto ec = arm(state.backend_slot, state.fd, POLLIN, kind_read)) return ec;
      e.read_armed = true;
    }
    if ((state.interest & io_write) && !e.write_armed) {
      if (const auto ec = arm(state.backend_slot, state.fd, POLLOUT, kind_write)) return ec;
      e.write_armed = true;
    }
    if (!state.on_ready && !state.hung_up && !e.hangup_armed && !e.half_closed) {
      if (const auto ec = arm(state.backend_slot, state.fd, 0, kind_hangup)) return ec;
      e.hangup_armed = true;
    }
    return {};
  }

  void remove(IoState& state) noexcept override {
    // In-flight polls complete against an unknown id and are dropped (see the file comment).
    // They are cancelled at once, not at the next wait: a pending poll holds a reference to the
    // socket, so until it goes, closing the descriptor would not close the connection (no FIN).
    const auto it = entries_.find(state.backend_slot);
    if (it == entries_.end()) return;
    const Entry& e = it->second;
    const bool armed[] = {e.read_armed, e.write_armed, e.hangup_armed};
    bool any = false;
    for (const std::uint64_t kind : {kind_read, kind_write, kind_hangup}) {
      if (!armed[kind]) continue;
      io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
      if (!sqe) {  // submission queue full: flush it and try once more
        ::io_uring_submit(&ring_);
        sqe = ::io_uring_get_sqe(&ring_);
      }
      if (!sqe) continue;
      ::io_uring_prep_poll_remove(sqe, (state.backend_slot << kind_bits) | kind);
      ::io_uring_sqe_set_data64(sqe, 0);  // id 0 is never used: ignored on completion
      any = true;
    }
    if (any) ::io_uring_submit(&ring_);
    entries_.erase(it);
  }

  bool level_only() const noexcept override { return true; }

  std::error_code wait(int timeout_ms, std::vector<ReadyIo>& out) noexcept override {
    __kernel_timespec ts{};
    __kernel_timespec* tsp = nullptr;
    if (timeout_ms >= 0) {
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
      tsp = &ts;
    }
    io_uring_cqe* cqe = nullptr;
    const int rc = ::io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, tsp, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN) {
      return {-rc, std::generic_category()};
    }
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      complete(cqe->user_data, cqe->res, out);
    }
    ::io_uring_cq_advance(&ring_, seen);
    return {};
  }

 private:
  struct Entry {
    IoState* state;
    bool read_armed;
    bool write_armed;
    bool hangup_armed;
    bool half_closed;  // the hang-up watch saw the peer's FIN: not re-armed
  };

  std::error_code arm(std::uint64_t id, int fd, unsigned events, std::uint64_t kind) noexcept {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
    if (!sqe) {  // submission queue full: flush it and try once more
      ::io_uring_submit(&ring_);
      sqe = ::io_uring_get_sqe(&ring_);
      if (!sqe) return std::make_error_code(std::errc::resource_unavailable_try_again);
    }
    ::io_uring_prep_poll_add(sqe, fd, events);
    ::io_uring_sqe_set_data64(sqe, (id << kind_bits) | kind);
    return {};
  }

  void complete(std::uint64_t user_data, int res, std::vector<ReadyIo>& out) {
    if (user_data == 0) return;  // a poll_remove's own completion
    const auto it = entries_.find(user_data >> kind_bits);
    if (it == entries_.end()) return;  // removed meanwhile
    Entry& e = it->second;
    const std::uint64_t kind = user_data & ((1U << kind_bits) - 1);
    const bool gone = res < 0 || (res & (POLLHUP | POLLERR | POLLNVAL));
    if (kind == kind_hangup) {
      e.hangup_armed = false;
      if (res == -ECANCELED) return;
      if (gone) {
        out.push_back({e.state, io_hangup | io_read | io_write});
      } else {  // only RDHUP: a half-close, which is no reason to cancel anything
        e.half_closed = true;
        out.push_back({e.state, io_peer_closed});
      }
      return;
    }
    const bool write = kind == kind_write;
    (write ? e.write_armed : e.read_armed) = false;
    if (res == -ECANCELED) return;
    unsigned ready = write ? io_write : io_read;
    if (gone) ready |= io_hangup | io_read | io_write;
    out.push_back({e.state, ready});
  }

  io_uring ring_{};
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, Entry> entries_;
};

}  // namespace

std::unique_ptr<Reactor> make_uring_reactor() { return std::make_unique<UringReactor>(); }

}  // namespace sockserv::aio::detail
