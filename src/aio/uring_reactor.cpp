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
//
// Receiving is by completion (Linux 6.0+, issue 10): the first time a connection's read would
// wait, its multishot poll is replaced by one multishot recv that picks buffers from the loop's
// provided-buffer ring (uring_buffer_ring.hpp). Each completion queues its buffer on the
// connection's inbox (a list threaded through a per-buffer array, so a connection costs two
// buffer ids and an offset) and reports io_read; reads then take bytes from the inbox - copied,
// or lent as a BufferLease without a copy - and make no syscall. When the ring runs dry the
// kernel ends that connection's recv with ENOBUFS: the connection then reads with recv(2), and
// when a read would wait it arms the multishot recv again if the ring has buffers, else a
// one-shot poll. A recv the kernel ends for any other reason (no F_MORE) is re-armed the same
// way. Completions for a removed state give their buffers back.
//
// Sending is by completion too: a connection's send goes into the submission queue and out with
// the loop's next io_uring_enter, which also waits (MSG_WAITALL: the kernel finishes a partial
// send itself), so one syscall carries every connection's sends and the wait. A send abandoned
// before it completes (a timeout, a cancellation) is turned into a no-op if it was not submitted
// yet, else cancelled synchronously; its late completion is then skipped.
//
// A listener accepts by completion too: one multishot accept (SOCK_NONBLOCK | SOCK_CLOEXEC)
// posts each new connection's descriptor, queued until the server's accept loop takes it. The
// server cancels it while it is at max_connections (the kernel's backlog then holds the
// clients, as with accept4) and arms it again before it next waits.
#include "aio/reactor.hpp"
#include "aio/uring_buffer_ring.hpp"

#include <sockserv/error.hpp>

#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <tuple>
#include <utility>
#include <vector>

namespace sockserv::aio::detail {
namespace {

// The low two bits of user_data say which poll completed; the rest is the state's id.
constexpr std::uint64_t kind_read = 0;    // one-shot, level-triggered states
constexpr std::uint64_t kind_write = 1;   // one-shot, level-triggered states
constexpr std::uint64_t kind_edges = 2;   // multishot, edge-triggered states
constexpr std::uint64_t kind_recv = 3;    // multishot recv into the buffer ring
constexpr std::uint64_t kind_send = 4;    // a connection's send, queued for the next wait
constexpr std::uint64_t kind_accept = 5;  // a listener's multishot accept
constexpr std::uint64_t kind_bits = 3;
constexpr std::uint16_t no_buffer = 0xffff;  // an empty inbox
// Not POLLOUT: a socket's write space wakes it on nearly every ACK, and the multishot poll
// would post a completion for each. A writer that has to wait arms a one-shot POLLOUT poll.
constexpr unsigned edge_events = POLLIN | POLLRDHUP;  // HUP and ERR always come

class UringReactor final : public Reactor {
 public:
  UringReactor() {
    int rc = setup_ring();
    if (rc < 0) throw_error({-rc, std::generic_category()}, "io_uring_queue_init");
    // Multishot polls came with Linux 5.13; CQE_SKIP (5.17) is the nearest feature bit to test.
    if (!(ring_.features & IORING_FEAT_CQE_SKIP)) {
      ::io_uring_queue_exit(&ring_);
      throw_error(std::make_error_code(std::errc::not_supported),
                  "io_uring backend (needs Linux 5.17 or later)");
    }
    // The buffer ring (5.19) and multishot recv (6.0): without them, readiness and recv(2).
    std::error_code ec;
    buffers_ = UringBufferRing::create(ring_, ec);
    // Sends by completion need a synchronous cancel (6.0) for the abandoned ones: probed with a
    // cancel that matches nothing.
    io_uring_sync_cancel_reg probe{};
    probe.addr = 0;
    probe.timeout.tv_sec = -1;
    probe.timeout.tv_nsec = -1;
    sends_supported_ = ::io_uring_register_sync_cancel(&ring_, &probe) == -ENOENT;
    if (buffers_ != nullptr) {
      next_.assign(UringBufferRing::count, no_buffer);
      length_.assign(UringBufferRing::count, 0);
    }
  }
  ~UringReactor() override {
    forget_registered_ring_fd();
    if (buffers_ != nullptr) buffers_->detach(ring_);
    ::io_uring_queue_exit(&ring_);
  }

  bool can_receive() const noexcept override { return buffers_ != nullptr && recv_supported_; }

  EventLoop::ReceiveCounters receive_counters() const noexcept override {
    if (!can_receive()) return {};
    return {true, UringBufferRing::count, buffers_->available(), ring_exhausted_};
  }

  bool start_receiving(IoState& state) noexcept override {
    Entry* found = find(state.backend_slot);
    if (!found || !can_receive() || state.syscall_reads) return false;
    Entry& e = *found;
    state.completion_reads = true;
    if (e.armed[kind_edges]) {  // the recv reports what the poll did: one completion, not two
      if (io_uring_sqe* sqe = next_sqe()) {
        ::io_uring_prep_poll_remove(sqe, (state.backend_slot << kind_bits) | kind_edges);
        ::io_uring_sqe_set_data64(sqe, 0);
      }
    }
    arm_receiving(state, e);
    return true;
  }

  ssize_t take_into(IoState& state, std::span<char> into) noexcept override {
    Entry* found = find(state.backend_slot);
    if (!found) {
      errno = EBADF;
      return -1;
    }
    Entry& e = *found;
    std::size_t got = 0;
    while (got < into.size() && e.head != no_buffer) {
      const std::uint16_t id = e.head;
      const std::size_t n = std::min<std::size_t>(into.size() - got, length_[id] - e.offset);
      std::memcpy(into.data() + got, buffers_->buffer(id) + e.offset, n);
      got += n;
      e.offset += static_cast<std::uint32_t>(n);
      if (e.offset == length_[id]) {
        pop(e);
        buffers_->recycle(id);
      }
    }
    if (got > 0) return static_cast<ssize_t>(got);
    return take_end(state, e, into);
  }

  bool can_send() const noexcept override { return sends_supported_; }

  bool submit_send(IoState& state, std::string_view data) noexcept override {
    Entry* found = find(state.backend_slot);
    if (!found || found->send_in_flight) return false;
    io_uring_sqe* sqe = next_sqe();
    if (!sqe) return false;
    ::io_uring_prep_send(sqe, state.fd, data.data(), data.size(), MSG_WAITALL | MSG_NOSIGNAL);
    ::io_uring_sqe_set_data64(sqe, (state.backend_slot << kind_bits) | kind_send);
    found->send_in_flight = true;
    found->send_done = false;
    found->send_sqe = sqe;
    found->send_submission = submissions_;
    return true;
  }

  bool take_send_result(IoState& state, int& result) noexcept override {
    Entry* found = find(state.backend_slot);
    if (!found) {
      result = -EBADF;
      return true;
    }
    if (!found->send_done) return false;
    found->send_done = false;
    result = found->send_result;
    return true;
  }

  void cancel_send(IoState& state) noexcept override {
    Entry* found = find(state.backend_slot);
    if (!found || !found->send_in_flight) return;
    Entry& e = *found;
    e.send_in_flight = false;
    if (e.send_submission == submissions_) {  // still in the submission queue: void it
      ::io_uring_prep_nop(e.send_sqe);
      ::io_uring_sqe_set_data64(e.send_sqe, 0);
      return;
    }
    io_uring_sync_cancel_reg reg{};
    reg.addr = (state.backend_slot << kind_bits) | kind_send;
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    (void)sync_cancel(reg);
    ++e.stale_sends;  // its completion (sent or cancelled) is still to come: skipped
  }

  bool can_accept() const noexcept override { return sends_supported_; }

  void start_accepting(IoState& listener) noexcept override {
    Entry* found = find(listener.backend_slot);
    if (!found || found->armed[kind_accept]) return;
    if (found->armed[kind_edges]) {  // the accept's completions say what the poll did
      if (io_uring_sqe* sqe = next_sqe()) {
        ::io_uring_prep_poll_remove(sqe, (listener.backend_slot << kind_bits) | kind_edges);
        ::io_uring_sqe_set_data64(sqe, 0);
      }
    }
    if (io_uring_sqe* sqe = next_sqe()) {
      ::io_uring_prep_multishot_accept(sqe, listener.fd, nullptr, nullptr,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      ::io_uring_sqe_set_data64(sqe, (listener.backend_slot << kind_bits) | kind_accept);
      found->armed[kind_accept] = true;
      found->accepting = true;
    }
  }

  void stop_accepting(IoState& listener) noexcept override {
    Entry* found = find(listener.backend_slot);
    if (!found || !found->armed[kind_accept]) return;
    // Synchronously, so start_accepting may arm a new one at once: the old one's completions
    // (connections it took before the cancel, then its end) are posted by now, and its end is
    // told from the new one's by counting.
    submit();
    io_uring_sync_cancel_reg reg{};
    reg.addr = (listener.backend_slot << kind_bits) | kind_accept;
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    (void)sync_cancel(reg);
    found->armed[kind_accept] = false;
    ++found->stale_accept_ends;
  }

  int take_accepted(IoState& listener) noexcept override {
    for (auto it = accepted_.begin(); it != accepted_.end(); ++it) {
      if (it->first != listener.backend_slot) continue;
      const int result = it->second;
      accepted_.erase(it);
      if (result >= 0) return result;
      errno = -result;
      return -1;
    }
    errno = EAGAIN;
    return -1;
  }

  bool take_lease(IoState& state, std::size_t max, BufferLease& out) noexcept override {
    Entry* found = find(state.backend_slot);
    if (!found || found->head == no_buffer) return false;
    Entry& e = *found;
    const std::uint16_t id = e.head;
    const std::size_t n = length_[id] - e.offset;
    if (n > max) return false;
    out = buffers_->lend(id, e.offset, n);
    pop(e);  // the lease owns the buffer now: given back when it is dropped
    return true;
  }

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
      if (kind == kind_write && e.send_in_flight) continue;     // its completion will report
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
    while (found->head != no_buffer) {  // received and never read: back into the ring
      const std::uint16_t id = found->head;
      pop(*found);
      buffers_->recycle(id);
    }
    for (auto it = accepted_.begin(); it != accepted_.end();) {  // accepted, never taken
      if (it->first == state.backend_slot) {
        if (it->second >= 0) ::close(it->second);
        it = accepted_.erase(it);
      } else {
        ++it;
      }
    }
    const Entry e = *found;
    release(state.backend_slot);
    if (!e.armed[kind_read] && !e.armed[kind_write] && !e.armed[kind_edges] &&
        !e.armed[kind_recv] && !e.armed[kind_accept] && !e.send_in_flight) {
      return;
    }
    // Synchronously (Linux 6.0): a poll that has just fired can still hold the file when an
    // asynchronous poll_remove returns, and the descriptor closed next would not send a FIN.
    // The arming SQEs go in first, or there would be nothing to cancel yet.
    submit();
    io_uring_sync_cancel_reg reg{};
    reg.fd = state.fd;
    reg.flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    const int rc = sync_cancel(reg);
    if (rc != -EINVAL) return;  // done (or -ENOENT: nothing left)
    for (const std::uint64_t kind : {kind_read, kind_write, kind_edges}) {  // older kernels
      // (Before 6.0 there is no multishot recv to cancel: can_receive() was false.)
      if (!e.armed[kind]) continue;
      if (io_uring_sqe* sqe = next_sqe()) {
        ::io_uring_prep_poll_remove(sqe, (state.backend_slot << kind_bits) | kind);
        ::io_uring_sqe_set_data64(sqe, 0);  // id 0 is never used: ignored on completion
      }
    }
    submit();
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
    if (!thread_adopted_) {
      if (const auto ec = adopt_thread()) return ec;
    }
    if (buffers_ != nullptr) buffers_->drain_foreign();
    io_uring_cqe* cqe = nullptr;
    ++submissions_;  // what is queued goes in now
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
  // Linux 6.1+: one thread submits and waits (SINGLE_ISSUER: no locking inside the ring), and the
  // kernel defers the work that turns a socket's wake-up into a completion until that thread
  // waits (DEFER_TASKRUN), batching it instead of interrupting the thread per completion. The
  // ring starts disabled, because a loop is built on one thread and run on another: the thread
  // that first waits enables it and becomes its only submitter. Older kernels refuse the flags:
  // then completions are noticed at the loop's next syscall (COOP_TASKRUN, 5.19; an
  // inter-processor interrupt per completion doubled the CPU per message on a VM), or as they come.
  int setup_ring() noexcept {
    constexpr unsigned single = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL;
    if (std::getenv("SOCKSERV_URING_NO_DEFER") == nullptr) {
      const int rc = ::io_uring_queue_init(1024, &ring_, single);
      if (rc != -EINVAL) {
        single_issuer_ = rc == 0;
        return rc;
      }
    }
    const int rc =
        ::io_uring_queue_init(1024, &ring_, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
    return rc == -EINVAL ? ::io_uring_queue_init(1024, &ring_, 0) : rc;  // before Linux 5.19
  }

  // The first wait: this thread becomes the ring's submitter (and the buffer ring's owner).
  std::error_code adopt_thread() noexcept {
    if (single_issuer_) {
      // liburing 2.3 declares io_uring_enable_rings but does not export it: the raw call.
      if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
                    0) < 0) {
        return {errno, std::generic_category()};
      }
    }
    if (buffers_ != nullptr) buffers_->adopt_thread();
    thread_adopted_ = true;
    adopter_ = ::gettid();
    if (single_issuer_) {
      // The ring's descriptor, registered with this thread (Linux 5.18): io_uring_enter then skips
      // the descriptor lookup. The registration is this thread's, so only this ring's one
      // submitter may use it. A thread has 16 slots; without one the ring is entered by its fd.
      plain_int_flags_ = ring_.int_flags;
      ring_fd_registered_ = ::io_uring_register_ring_fd(&ring_) == 1;
    }
    return {};
  }

  // Unregisters the ring's descriptor from the thread that registered it. Another thread cannot
  // (a registration is an index into the registering thread's own table, and that index there
  // may name another ring): it only makes liburing enter by the plain descriptor again, and the
  // registration goes when its thread exits, keeping the ring's memory until then.
  void forget_registered_ring_fd() noexcept {
    if (!ring_fd_registered_) return;
    if (::gettid() == adopter_) {
      (void)::io_uring_unregister_ring_fd(&ring_);
    } else {
      ring_.enter_ring_fd = ring_.ring_fd;
      ring_.int_flags = plain_int_flags_;
    }
    ring_fd_registered_ = false;
  }

  // Cancels synchronously, then lets the cancelled requests finish. Under DEFER_TASKRUN the
  // kernel completes them (and lets go of their socket) only in task work that runs when this
  // thread next enters the ring: entered now, or a descriptor closed next would not send its FIN
  // until the loop's next wait, and a loop that is about to stop would never send it.
  int sync_cancel(io_uring_sync_cancel_reg& reg) noexcept {
    const int rc = ::io_uring_register_sync_cancel(&ring_, &reg);
    if (single_issuer_) (void)::io_uring_get_events(&ring_);
    return rc;
  }

  struct Entry {
    IoState* state = nullptr;  // nullptr: free
    std::uint32_t generation = 0;
    bool armed[6] = {};  // by kind (kind_send has its own fields)
    // Received, not yet read: buffer ids linked through next_, and how much of the first one
    // was read already. Then the end of the stream, if the recv saw it.
    std::uint16_t head = no_buffer;
    std::uint16_t tail = no_buffer;
    std::uint32_t offset = 0;
    bool eof = false;
    int error = 0;  // the recv's error (errno), reported once the inbox is read
    // The connection's send: queued or in the kernel, then its result until taken.
    bool accepting = false;              // a listener whose connections come by multishot accept
    std::uint8_t stale_accept_ends = 0;  // cancelled accepts whose last completion is to come
    bool send_in_flight = false;
    bool send_done = false;
    std::uint8_t stale_sends = 0;  // abandoned sends whose completions are still to come
    int send_result = 0;
    io_uring_sqe* send_sqe = nullptr;  // while send_submission == submissions_: unsubmitted
    std::uint64_t send_submission = 0;
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
    Entry cleared;
    cleared.generation = slots_[index].generation;
    slots_[index] = cleared;
    free_.push_back(index);
  }

  io_uring_sqe* next_sqe() noexcept {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
    if (!sqe) {  // submission queue full: flush it and try once more
      submit();
      sqe = ::io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void submit() noexcept {
    ++submissions_;
    ::io_uring_submit(&ring_);
  }

  void push(Entry& e, std::uint16_t id, std::uint32_t length) noexcept {
    length_[id] = length;
    next_[id] = no_buffer;
    if (e.tail == no_buffer) {
      e.head = id;
    } else {
      next_[e.tail] = id;
    }
    e.tail = id;
  }

  void pop(Entry& e) noexcept {
    const std::uint16_t id = e.head;
    e.head = next_[id];
    if (e.head == no_buffer) e.tail = no_buffer;
    e.offset = 0;
  }

  // The inbox is empty: the end of the stream, the recv's error, "wait", or - with no recv
  // armed (the ring ran dry, or the kernel ended it) - a plain recv(2), arming the next
  // notification when it would wait.
  ssize_t take_end(IoState& state, Entry& e, std::span<char> into) noexcept {
    if (e.eof) return 0;
    if (e.error != 0) {
      errno = e.error;
      return -1;
    }
    if (!e.armed[kind_recv]) {
      const ssize_t n = ::recv(state.fd, into.data(), into.size(), MSG_DONTWAIT);
      if (n >= 0 || errno != EAGAIN) {
        if (n == 0) e.eof = true;
        return n;
      }
      arm_receiving(state, e);
    }
    errno = EAGAIN;
    return -1;
  }

  // A multishot recv when the ring has buffers to spare (a quarter), else a one-shot poll: either
  // reports io_read when bytes come.
  void arm_receiving(IoState& state, Entry& e) noexcept {
    if (buffers_->available() >= UringBufferRing::count / 4) {
      if (io_uring_sqe* sqe = next_sqe()) {
        ::io_uring_prep_recv_multishot(sqe, state.fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = UringBufferRing::group;
        ::io_uring_sqe_set_data64(sqe, (state.backend_slot << kind_bits) | kind_recv);
        e.armed[kind_recv] = true;
        return;
      }
    }
    if (!e.armed[kind_read] && !arm(state.backend_slot, state.fd, POLLIN | POLLRDHUP, kind_read)) {
      e.armed[kind_read] = true;
    }
  }

  void complete_recv(const io_uring_cqe& cqe, Entry* found, std::vector<ReadyIo>& out) {
    const int res = cqe.res;
    if (cqe.flags & IORING_CQE_F_BUFFER) {
      const auto id = static_cast<std::uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
      buffers_->taken();
      if (found && res > 0) {
        push(*found, id, static_cast<std::uint32_t>(res));
      } else {
        buffers_->recycle(id);  // the state is gone (or nothing was received into it)
      }
    }
    if (!found) return;
    Entry& e = *found;
    if (!(cqe.flags & IORING_CQE_F_MORE)) e.armed[kind_recv] = false;
    if (res == -ECANCELED) return;
    unsigned ready = io_read;
    if (res == 0) {
      e.eof = true;
      ready |= io_peer_closed;
    } else if (res == -EINVAL || res == -EOPNOTSUPP) {
      // No multishot recv in this kernel (5.19): readiness and recv(2) from now on.
      recv_supported_ = false;
      e.state->completion_reads = false;
      if (!arm(cqe.user_data >> kind_bits, e.state->fd, edge_events, kind_edges)) {
        e.armed[kind_edges] = true;
      }
    } else if (res == -ENOBUFS) {
      ++ring_exhausted_;
    } else if (res < 0) {
      e.error = -res;
      ready |= io_hangup;
    }
    // ENOBUFS and other ends without F_MORE: the reader retries; take_end reads with recv(2)
    // and re-arms.
    out.push_back({e.state, ready});
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
    const std::uint64_t kind = cqe.user_data & ((1U << kind_bits) - 1);
    if (kind == kind_recv) return complete_recv(cqe, found, out);
    if (!found) return;  // removed meanwhile
    Entry& e = *found;
    if (kind == kind_accept) {
      if (!(cqe.flags & IORING_CQE_F_MORE)) {
        if (e.stale_accept_ends > 0) {
          --e.stale_accept_ends;  // the end of one stop_accepting cancelled
        } else {
          e.armed[kind_accept] = false;
        }
      }
      if (cqe.res == -ECANCELED) return;
      accepted_.emplace_back(id, cqe.res);  // a descriptor, or -errno for the accept loop
      out.push_back({e.state, io_read});
      return;
    }
    if (kind == kind_send) {
      if (e.stale_sends > 0) {
        --e.stale_sends;
        return;
      }
      e.send_in_flight = false;
      e.send_done = true;
      e.send_result = cqe.res;
      out.push_back({e.state, io_write});
      return;
    }
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
      if (!e.state->hung_up && !(ready & io_hangup) && !e.state->completion_reads && !e.accepting &&
          !arm(id, e.state->fd, edge_events, kind_edges)) {
        e.armed[kind_edges] = true;
      }
    }
    if (ready) out.push_back({e.state, ready});
  }

  io_uring ring_{};
  std::vector<Entry> slots_;
  std::vector<std::uint32_t> free_;
  UringBufferRing* buffers_ = nullptr;  // nullptr: no buffer ring (before Linux 5.19)
  std::vector<std::uint16_t> next_;     // per buffer id: the next in its connection's inbox
  std::vector<std::uint32_t> length_;   // per buffer id: the bytes received into it
  bool recv_supported_ = true;
  bool sends_supported_ = false;
  std::uint64_t submissions_ = 0;  // io_uring_submit calls: tells a queued SQE from a sent one
  // Multishot accepts' results not yet taken: (listener id, descriptor or -errno), in order.
  std::vector<std::pair<std::uint64_t, int>> accepted_;
  std::uint64_t ring_exhausted_ = 0;
  bool thread_adopted_ = false;
  bool single_issuer_ = false;  // SINGLE_ISSUER | DEFER_TASKRUN: only the adopting thread enters
  pid_t adopter_ = 0;           // the thread that first waited
  bool ring_fd_registered_ = false;
  decltype(io_uring::int_flags) plain_int_flags_ = 0;  // liburing's, before the registration
};

}  // namespace

std::unique_ptr<Reactor> make_uring_reactor() { return std::make_unique<UringReactor>(); }

}  // namespace sockserv::aio::detail
