// SPDX-License-Identifier: MIT
// AsyncUDPServer: batched receives (recvmmsg into per-loop buffers) and replies (a per-loop queue
// sent with sendmmsg). docs/ARCHITECTURE.md, "Datagrams", narrates it.
#include <sockserv/aio/server.hpp>
#include <sockserv/aio/timeout.hpp>
#include <sockserv/error.hpp>
#include <sockserv/log.hpp>

#include "access/gate.hpp"
#include "aio/server_worker.hpp"
#include "sys/fd.hpp"
#include "sys/report.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sockserv::aio {

using detail::Worker;

namespace detail {

// The replies one loop of an AsyncUDPServer owes, sent in batches with sendmmsg.
//
//   receive loop:  recvmmsg ─► start handlers ─► yield ─► end_batch(): sendmmsg ─► recvmmsg ...
//                                   │ reply() while gathering: appended
//                                   ▼
//   entries_ [ sent | head_ ... unsent ]  bytes_ (one arena; offsets into it)
//
// A reply made while a batch gathers is appended; one made later is sent at once when nothing
// waits before it, or appended (never overtaking an earlier reply: replies to one peer stay in
// order, as all replies go out in the order they were made). When the socket's send buffer is
// full (EAGAIN: an IP socket's SO_SNDBUF, or a Unix peer's queue) the queue retries on a timer,
// 1 ms doubling to 64 ms, rather than waiting for writability: a socket several loops share is
// registered for input only (EPOLLEXCLUSIVE), so no writability would be reported, and a timer
// works under every backend. It holds at most max_queued_replies entries and
// max_queued_reply_bytes bytes: past either a reply is dropped (counted, logged once per
// episode). A head that makes no progress for a second is dropped with every queued reply to
// the same peer (a Unix peer that stopped reading), so the others move again. Used on its
// loop's thread only.
class ReplyQueue {
 public:
  ReplyQueue(AsyncUDPServer& server, Worker& worker) : server_(server), worker_(worker) {}
  ReplyQueue(const ReplyQueue&) = delete;
  ReplyQueue& operator=(const ReplyQueue&) = delete;
  ~ReplyQueue() {
    retry_.cancel();
    // The loop has stopped (shutdown, or it failed): what is still queued is lost, and counted.
    if (const auto left = entries_.size() - head_) ServerStats::add(server_.stats.dropped, left);
  }

  bool on_loop_thread() const noexcept { return EventLoop::current() == worker_.loop.get(); }

  // A handler's reply (Datagram::reply): sent, queued, or dropped (false).
  bool push(std::string_view bytes, const Address& to) {
    if (!gathering_ && head_ == entries_.size()) {
      // Nothing waits before it: send now (a reply made after the handler awaited something).
      const auto n = sys::retry_eintr([&] {
        return ::sendto(worker_.listener.fd, bytes.data(), bytes.size(),
                        MSG_DONTWAIT | MSG_NOSIGNAL, to.data(), to.size());
      });
      if (n >= 0) {
        ServerStats::add(server_.stats.bytes_out, bytes.size());
        return true;
      }
      if (!sys::would_block(errno)) return drop_failed(errno, to);
    }
    if (entries_.size() - head_ >= server_.max_queued_replies ||
        queued_bytes_ + bytes.size() > server_.max_queued_reply_bytes) {
      ServerStats::add(server_.stats.dropped);
      if (!overflow_logged_) {
        overflow_logged_ = true;
        log(LogLevel::warning,
            "sockserv: " + server_.server_address.to_string() + ": " +
                std::to_string(entries_.size() - head_) +
                " replies wait for the socket's send buffer (max_queued_replies " +
                std::to_string(server_.max_queued_replies) + ", max_queued_reply_bytes " +
                std::to_string(server_.max_queued_reply_bytes) + "); dropping replies");
      }
      return false;
    }
    entries_.push_back({bytes_.size(), bytes.size(), to});
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    queued_bytes_ += bytes.size();
    if (!gathering_ && !retry_.active()) flush();  // EAGAIN just now: arms the retry
    return true;
  }

  // While a receive batch's handlers run, replies are gathered rather than sent.
  void begin_batch() noexcept { gathering_ = true; }
  void end_batch() {
    gathering_ = false;
    if (!retry_.active()) flush();  // (a retry is due: the socket was full a moment ago)
  }

 private:
  struct Entry {
    std::size_t offset = 0;
    std::size_t size = 0;
    Address to;
  };
  static constexpr std::size_t send_batch = 64;

  // Sends the queue's head in sendmmsg batches until it is empty or the socket is full.
  void flush() {
    while (head_ < entries_.size()) {
      const std::size_t count = std::min(send_batch, entries_.size() - head_);
      for (std::size_t i = 0; i < count; ++i) {
        auto& e = entries_[head_ + i];
        iov_[i] = {bytes_.data() + e.offset, e.size};
        msgs_[i] = {};
        msgs_[i].msg_hdr.msg_name = e.to.data();
        msgs_[i].msg_hdr.msg_namelen = e.to.size();
        msgs_[i].msg_hdr.msg_iov = &iov_[i];
        msgs_[i].msg_hdr.msg_iovlen = 1;
      }
      const int sent = sys::retry_eintr([&] {
        return ::sendmmsg(worker_.listener.fd, msgs_.data(), static_cast<unsigned>(count),
                          MSG_DONTWAIT | MSG_NOSIGNAL);
      });
      if (sent > 0) {
        for (int i = 0; i < sent; ++i) pop(true);
        backoff_ = std::chrono::milliseconds(0);
        continue;
      }
      const int error = errno;
      if (sys::would_block(error) || error == ENOBUFS) return wait_and_retry();
      // The head itself failed (a Unix peer that is gone, no route, ...): that reply only.
      drop_failed(error, entries_[head_].to);
      pop(false);
    }
    entries_.clear();  // all sent: the arena starts again (capacity kept)
    bytes_.clear();
    head_ = 0;
    overflow_logged_ = false;
  }

  void pop(bool sent) noexcept {
    auto& e = entries_[head_++];
    queued_bytes_ -= e.size;
    if (sent) ServerStats::add(server_.stats.bytes_out, e.size);
  }

  bool drop_failed(int error, const Address& to) {
    ServerStats::add(server_.stats.dropped);
    log(LogLevel::debug, "sockserv: reply to " + to.to_string() +
                             " dropped: " + std::generic_category().message(error));
    return false;
  }

  void wait_and_retry() {
    const auto now = Clock::now();
    if (backoff_.count() == 0 || head_ != stuck_head_) {
      stuck_head_ = head_;
      stuck_since_ = now;
    } else if (now - stuck_since_ >= std::chrono::seconds(1)) {
      drop_stuck_peer();
      stuck_head_ = head_;
      stuck_since_ = now;
    }
    backoff_ =
        std::clamp(backoff_ * 2, std::chrono::milliseconds(1), std::chrono::milliseconds(64));
    compact();
    retry_ = worker_.loop->call_later(backoff_, [this] { flush(); });
  }

  // Drops every queued reply to the head's peer (keeping the others' order).
  void drop_stuck_peer() {
    const Address peer = entries_[head_].to;
    std::size_t kept = head_;
    std::size_t dropped = 0;
    for (std::size_t i = head_; i < entries_.size(); ++i) {
      if (entries_[i].to == peer) {
        queued_bytes_ -= entries_[i].size;
        ++dropped;
      } else {
        entries_[kept++] = entries_[i];
      }
    }
    entries_.resize(kept);
    ServerStats::add(server_.stats.dropped, dropped);
    log(LogLevel::warning, "sockserv: " + std::to_string(dropped) + " replies to " +
                               peer.to_string() +
                               " dropped: the socket took none of them for a second");
  }

  // Moves the unsent replies to the front, so a queue that never empties stays bounded.
  void compact() {
    if (head_ == 0) return;
    std::size_t offset = 0;
    for (std::size_t i = head_; i < entries_.size(); ++i) {
      auto& e = entries_[i];
      std::memmove(bytes_.data() + offset, bytes_.data() + e.offset, e.size);
      e.offset = offset;
      offset += e.size;
    }
    bytes_.resize(offset);
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
    stuck_head_ = 0;
  }

  AsyncUDPServer& server_;
  Worker& worker_;
  std::vector<Entry> entries_;
  std::size_t head_ = 0;  // entries_[head_..] are unsent
  std::vector<char> bytes_;
  std::size_t queued_bytes_ = 0;
  bool gathering_ = false;
  bool overflow_logged_ = false;
  TimerHandle retry_;
  std::chrono::milliseconds backoff_{0};
  std::size_t stuck_head_ = 0;
  Clock::time_point stuck_since_{};
  std::array<mmsghdr, send_batch> msgs_{};
  std::array<iovec, send_batch> iov_{};
};

namespace {

// A loop's receive buffers, kept for its life: up to 32 datagrams of max_packet_size each per
// recvmmsg, capped at 4 MiB in all (a larger max_packet_size takes fewer per call).
class ReceiveBatch {
 public:
  explicit ReceiveBatch(std::size_t max_packet_size)
      : size_(std::max<std::size_t>(max_packet_size, 1)),
        count_(std::clamp<std::size_t>((std::size_t{4} << 20) / size_, 1, 32)),
        buffers_(std::make_unique_for_overwrite<char[]>(size_ * count_)),
        msgs_(count_),
        iov_(count_),
        names_(count_) {
    for (std::size_t i = 0; i < count_; ++i) iov_[i] = {buffers_.get() + i * size_, size_};
  }

  std::size_t capacity() const noexcept { return count_; }

  // recvmmsg without blocking: the number received, or -1 (errno). MSG_TRUNC: each msg_len is
  // the datagram's real size, so an oversized one is seen, not cut.
  int receive(int fd) noexcept {
    for (std::size_t i = 0; i < count_; ++i) {
      auto& h = msgs_[i].msg_hdr;
      h = {};
      h.msg_name = &names_[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &iov_[i];
      h.msg_iovlen = 1;
    }
    return sys::retry_eintr([&] {
      return ::recvmmsg(fd, msgs_.data(), static_cast<unsigned>(count_), MSG_DONTWAIT | MSG_TRUNC,
                        nullptr);
    });
  }

  std::string_view data(std::size_t i) const noexcept {
    return {buffers_.get() + i * size_, std::min<std::size_t>(msgs_[i].msg_len, size_)};
  }
  std::size_t real_size(std::size_t i) const noexcept { return msgs_[i].msg_len; }
  bool truncated(std::size_t i) const noexcept {
    return (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || msgs_[i].msg_len > size_;
  }
  Address sender(std::size_t i) const {
    return {reinterpret_cast<const sockaddr*>(&names_[i]), msgs_[i].msg_hdr.msg_namelen};
  }

 private:
  std::size_t size_;
  std::size_t count_;
  std::unique_ptr<char[]> buffers_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_storage> names_;
};

// Ends a receive batch however the receive loop leaves it (a cancellation included): the
// replies gathered so far go out.
struct BatchGuard {
  explicit BatchGuard(ReplyQueue& q) noexcept : queue(q) { queue.begin_batch(); }
  BatchGuard(const BatchGuard&) = delete;
  BatchGuard& operator=(const BatchGuard&) = delete;
  ~BatchGuard() {
    try {
      queue.end_batch();
    } catch (...) {  // no memory for the retry timer: what is queued waits for the next batch
    }
  }
  ReplyQueue& queue;
};

}  // namespace

void ReplyQueueDelete::operator()(ReplyQueue* queue) const noexcept { delete queue; }

}  // namespace detail

bool Datagram::reply(std::string_view bytes) const {
  if (replies && replies->on_loop_thread()) return replies->push(bytes, address);
  const auto n = sys::retry_eintr([&] {
    return ::sendto(socket->fileno(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                    address.data(), address.size());
  });
  return n >= 0;
}

AsyncUDPServer::AsyncUDPServer(const Address& address, DatagramHandler handler,
                               bool bind_and_activate)
    : AsyncServerBase(address, SOCK_DGRAM), RequestHandlerClass(std::move(handler)) {
  if (bind_and_activate) this->bind_and_activate();
}

void AsyncUDPServer::server_activate() { activate(socket); }

void AsyncUDPServer::apply_socket_options(Socket& s) {
  // The kernel caps the request at net.core.rmem_max without an error: nothing to report.
  if (receive_buffer_size > 0) s.setsockopt(SOL_SOCKET, SO_RCVBUF, receive_buffer_size);
}

Task<void> AsyncUDPServer::receive_loop(Worker& w) {
  if (!w.replies) w.replies.reset(new detail::ReplyQueue(*this, w));
  detail::ReplyQueue& replies = *w.replies;
  detail::ReceiveBatch batch(max_packet_size);
  for (;;) {
    // Edge-triggered: wait only once a receive found the queue empty, and no edge came since.
    if (!w.listener.maybe_readable) co_await detail::WaitReadable(w);
    const int received = batch.receive(w.listener.fd);
    if (received < 0) {
      if (!sys::would_block(errno)) {
        ServerStats::add(stats.accept_errors);
        sys::report_line("sockserv: recvmmsg " + server_address.to_string() + ": " +
                         std::generic_category().message(errno));
      }
      w.listener.maybe_readable = false;
      continue;
    }
    // Fewer than asked: the kernel had no more. A datagram arriving from now on is a new edge,
    // which sets maybe_readable again while the handlers run below.
    if (static_cast<std::size_t>(received) < batch.capacity()) w.listener.maybe_readable = false;
    {
      detail::BatchGuard gathering(replies);
      for (std::size_t i = 0; i < static_cast<std::size_t>(received); ++i) {
        if (batch.truncated(i)) {
          ServerStats::add(stats.accept_errors);
          sys::report_line("sockserv: datagram truncated: " + std::to_string(batch.real_size(i)) +
                           " bytes from " + batch.sender(i).to_string() +
                           " exceed max_packet_size (" + std::to_string(max_packet_size) +
                           "), dropped");
          continue;
        }
        const Address sender = batch.sender(i);
        ServerStats::add(stats.accepted);
        // The access policy, per datagram (as the blocking datagram servers apply it).
        Admission admission =
            sockserv::detail::admit_client(access_policy.get(), sender, stats, server_address);
        if (!admission) continue;
        Datagram d{std::string(batch.data(i)), sender, w.socket, &replies};
        ServerStats::add(stats.bytes_in, d.data.size());
        if (active_tasks() >= max_connections) {
          replies.end_batch();  // what the started handlers reply meanwhile goes out at once
          co_await wait_for_capacity();
          replies.begin_batch();
        }
        start_task(
            w, sender, [&](CancelState&) { return RequestHandlerClass(std::move(d)); },
            std::move(admission));
      }
      // One loop turn: the handlers just started run (to their first suspension), gathering
      // their replies, which the guard then sends with one sendmmsg.
      co_await sleep(std::chrono::nanoseconds::zero());
    }
  }
}
}  // namespace sockserv::aio
