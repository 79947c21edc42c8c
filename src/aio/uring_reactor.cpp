// SPDX-License-Identifier: MIT
// The io_uring backend (built when liburing is found at configure time; chosen with
// EventLoop::Backend::io_uring or SOCKSERV_POLLER=io_uring).
//
// It uses io_uring as a readiness source, so the connection code is shared with the other
// backends. A connection (an edge-triggered state) gets one multishot IORING_OP_POLL_ADD for
// read, write and the peer hanging up, armed once for its life: it posts a completion for each
// wake-up, which is epoll's edge-triggered mode, so nothing is submitted per operation. (The
// first version armed a one-shot poll per wait, as for poll(2): twice the CPU per message.)
// Level-triggered states (add_reader watches, the loop's wake-up eventfd) get one-shot polls,
// re-armed after each report. A shared listener has no EPOLLEXCLUSIVE here: every loop's ring
// hears of each connection, and the losers' accept() returns EAGAIN.
//
// Completions carry an id, not a pointer: a poll still in flight when its descriptor is
// removed completes later against an id that no longer exists and is ignored, so it can never
// touch freed memory. An id is a slot in a table plus the slot's generation, bumped when the slot
// is freed: a lookup is an index, and a held connection costs a 16-byte slot, not a hash node.
// Removal cancels a state's polls synchronously: a pending poll holds a reference to the socket, so
// until it goes, closing the descriptor would not close the connection.
#include "aio/reactor.hpp"

#include <sockserv/error.hpp>

#include <liburing.h>
#include <poll.h>

#include <cerrno>
#include <cstdint>
#include <new>
#include <tuple>
#include <vector>

namespace sockserv::aio::detail {
namespace {

// The low two bits of user_data say which poll completed; the rest is the state's id.
constexpr std::uint64_t kind_read = 0;   // one-shot, level-triggered states
constexpr std::uint64_t kind_write = 1;  // one-shot, level-triggered states
constexpr std::uint64_t kind_edges = 2;  // multishot, edge-triggered states
constexpr std::uint64_t kind_bits = 2;
// Not POLLOUT: a socket's write space wakes it on nearly every ACK, and the multishot poll
// would post a completion for each. A writer that has to wait arms a one-shot POLLOUT poll.
constexpr unsigned edge_events = POLLIN | POLLRDHUP;  // HUP and ERR always come

class UringReactor final : public Reactor {
 public:
  UringReactor() {
    // Completions are noticed at the loop's next syscall instead of by interrupting it (an
    // inter-processor interrupt per completion doubled the CPU per message on a VM).
    int rc =
        ::io_uring_queue_init(1024, &ring_, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
    if (rc == -EINVAL) rc = ::io_uring_queue_init(1024, &ring_, 0);  // before Linux 5.19
    if (rc < 0) throw_error({-rc, std::generic_category()}, "io_uring_queue_init");
    // Multishot polls came with Linux 5.13; CQE_SKIP (5.17) is the nearest feature bit to test.
    if (!(ring_.features & IORING_FEAT_CQE_SKIP)) {
      ::io_uring_queue_exit(&ring_);
      throw_error(std::make_error_code(std::errc::not_supported),
                  "io_uring backend (needs Linux 5.17 or later)");
    }
  }
  ~UringReactor() override { ::io_uring_queue_exit(&ring_); }

  std::error_code add(IoState& state) noexcept override {
    Entry* slot = allocate(state);
    if (!slot) return std::make_error_code(std::errc::not_enough_memory);
    const auto ec = state.edge_triggered
                        ? arm(state.backend_slot, state.fd, edge_events, kind_edges)
                        : update(state);
    if (ec) {
      release(state.backend_slot);  // never armed: nothing to cancel
      return ec;
    }
    if (state.edge_triggered) slot->armed[kind_edges] = true;
    return {};
  }

  std::error_code update(IoState& state) noexcept override {
    Entry* found = find(state.backend_slot);
    if (!found) return {};
    Entry& e = *found;
    for (const auto& [kind, want, events] :
         {std::tuple{kind_read, io_read, POLLIN}, std::tuple{kind_write, io_write, POLLOUT}}) {
      if (state.edge_triggered && kind == kind_read) continue;  // the multishot poll reads
      if (!(state.interest & want) || e.armed[kind]) continue;
      if (const auto ec = arm(state.backend_slot, state.fd, events, kind)) return ec;
      e.armed[kind] = true;
    }
    return {};
  }

  void rearm(IoState& state) noexcept override { (void)update(state); }

  void remove(IoState& state) noexcept override {
    Entry* found = find(state.backend_slot);
    if (!found) return;
    const Entry e = *found;
    release(state.backend_slot);
    if (!e.armed[kind_read] && !e.armed[kind_write] && !e.armed[kind_edges]) return;
    // Synchronously (Linux 6.0): a poll that has just fired can still hold the file when an
    // asynchronous poll_remove returns, and the descriptor closed next would not send a FIN.
    // The arming SQEs go in first, or there would be nothing to cancel yet.
    ::io_uring_submit(&ring_);
    io_uring_sync_cancel_reg reg{};
    reg.fd = state.fd;
    reg.flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    const int rc = ::io_uring_register_sync_cancel(&ring_, &reg);
    if (rc != -EINVAL) return;  // done (or -ENOENT: nothing left)
    for (const std::uint64_t kind : {kind_read, kind_write, kind_edges}) {  // older kernels
      if (!e.armed[kind]) continue;
      if (io_uring_sqe* sqe = next_sqe()) {
        ::io_uring_prep_poll_remove(sqe, (state.backend_slot << kind_bits) | kind);
        ::io_uring_sqe_set_data64(sqe, 0);  // id 0 is never used: ignored on completion
      }
    }
    ::io_uring_submit(&ring_);
  }

  bool level_only() const noexcept override { return false; }
  bool writes_on_demand() const noexcept override { return true; }

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
      complete(*cqe, out);
    }
    ::io_uring_cq_advance(&ring_, seen);
    return {};
  }

 private:
  struct Entry {
    IoState* state = nullptr;  // nullptr: free
    std::uint32_t generation = 0;
    bool armed[3] = {};  // by kind
  };
  // id = generation << 32 | slot index; with the kind bits it must fit in user_data's 64 bits,
  // and 0 (a poll_remove's completion) is never an id: generations start at 1.
  static constexpr std::uint32_t generation_mask = (1U << (32 - kind_bits)) - 1;

  Entry* allocate(IoState& state) noexcept {
    std::uint32_t index;
    if (!free_.empty()) {
      index = free_.back();
      free_.pop_back();
    } else {
      if (slots_.size() == 0xffffffffU) return nullptr;
      try {
        slots_.emplace_back();
        free_.reserve(slots_.capacity());  // release() then never allocates
      } catch (const std::bad_alloc&) {
        return nullptr;
      }
      index = static_cast<std::uint32_t>(slots_.size() - 1);
    }
    Entry& e = slots_[index];
    e.generation = e.generation % generation_mask + 1;  // 1 .. generation_mask
    e.state = &state;
    state.backend_slot = (std::uint64_t{e.generation} << 32) | index;
    return &e;
  }

  Entry* find(std::uint64_t id) noexcept {
    const auto index = static_cast<std::uint32_t>(id);
    if (index >= slots_.size()) return nullptr;
    Entry& e = slots_[index];
    return e.state && e.generation == (id >> 32) ? &e : nullptr;
  }

  void release(std::uint64_t id) noexcept {
    const auto index = static_cast<std::uint32_t>(id);
    slots_[index] = Entry{nullptr, slots_[index].generation, {}};
    free_.push_back(index);
  }

  io_uring_sqe* next_sqe() noexcept {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
    if (!sqe) {  // submission queue full: flush it and try once more
      ::io_uring_submit(&ring_);
      sqe = ::io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  std::error_code arm(std::uint64_t id, int fd, unsigned events, std::uint64_t kind) noexcept {
    io_uring_sqe* sqe = next_sqe();
    if (!sqe) return std::make_error_code(std::errc::resource_unavailable_try_again);
    if (kind == kind_edges) {
      ::io_uring_prep_poll_multishot(sqe, fd, events);
    } else {
      ::io_uring_prep_poll_add(sqe, fd, events);
    }
    ::io_uring_sqe_set_data64(sqe, (id << kind_bits) | kind);
    return {};
  }

  void complete(const io_uring_cqe& cqe, std::vector<ReadyIo>& out) {
    if (cqe.user_data == 0) return;  // a poll_remove's own completion
    const std::uint64_t id = cqe.user_data >> kind_bits;
    Entry* found = find(id);
    if (!found) return;  // removed meanwhile
    Entry& e = *found;
    const std::uint64_t kind = cqe.user_data & ((1U << kind_bits) - 1);
    const int res = cqe.res;
    // A one-shot poll is done; a multishot one ends only without F_MORE (an error, or the
    // completion queue overflowed), and is armed again so no edge is missed after it.
    const bool ended = kind != kind_edges || !(cqe.flags & IORING_CQE_F_MORE);
    if (ended) e.armed[kind] = false;
    if (res == -ECANCELED) return;
    unsigned ready = 0;
    if (res < 0 || (res & (POLLHUP | POLLERR | POLLNVAL))) ready |= io_hangup | io_read | io_write;
    if (res > 0 && (res & (POLLIN | POLLRDHUP))) ready |= io_read;
    if (res > 0 && (res & POLLRDHUP)) ready |= io_peer_closed;
    if (res > 0 && (res & POLLOUT)) ready |= io_write;
    if (kind == kind_edges && ended) {
      ready |= io_read;  // what the gap may have hidden: the reader retries
      if (!e.state->hung_up && !(ready & io_hangup) &&
          !arm(id, e.state->fd, edge_events, kind_edges)) {
        e.armed[kind_edges] = true;
      }
    }
    if (ready) out.push_back({e.state, ready});
  }

  io_uring ring_{};
  std::vector<Entry> slots_;
  std::vector<std::uint32_t> free_;
};

}  // namespace

std::unique_ptr<Reactor> make_uring_reactor() { return std::make_unique<UringReactor>(); }

}  // namespace sockserv::aio::detail
