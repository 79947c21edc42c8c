// SPDX-License-Identifier: MIT
// The event-loop servers: loops and their threads, the accept and receive loops, shutdown.
#include <sockserv/aio/server.hpp>
#include <sockserv/aio/timeout.hpp>
#include <sockserv/error.hpp>
#include <sockserv/log.hpp>
#include <sockserv/proxy_protocol.hpp>
#include <sockserv/thread.hpp>

#include "sys/fd.hpp"
#include "sys/report.hpp"
#include "sys/unix_file.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace sockserv::aio {
namespace detail {

// A client's address as accept() or recvfrom() gave it, kept for the error report at the end of
// its task: 32 bytes for IPv4, IPv6 and unnamed Unix clients rather than an Address's 136 (a
// held connection pays for it all its life); a longer, named Unix address goes to the heap.
class PeerAddress {
 public:
  explicit PeerAddress(const Address& address) : length_(address.size()) {
    if (is_short()) {
      std::memcpy(bytes_, address.data(), length_);
    } else {
      auto* heap = new Address(address);
      std::memcpy(bytes_, &heap, sizeof(Address*));  // NOLINT(bugprone-sizeof-expression)
    }
  }
  PeerAddress(const PeerAddress&) = delete;
  PeerAddress& operator=(const PeerAddress&) = delete;
  ~PeerAddress() {
    if (!is_short()) delete long_form();
  }
  Address get() const {
    if (!is_short()) return *long_form();
    sockaddr_storage storage{};
    std::memcpy(&storage, bytes_, length_);
    return {reinterpret_cast<const sockaddr*>(&storage), length_};
  }

 private:
  bool is_short() const noexcept { return length_ <= sizeof(bytes_); }
  Address* long_form() const noexcept {
    Address* heap = nullptr;
    std::memcpy(&heap, bytes_, sizeof(Address*));  // NOLINT(bugprone-sizeof-expression)
    return heap;
  }
  // A sockaddr_in6 (which fits a sockaddr_in) or the pointer to a longer address; bytes, so
  // that the length packs next to them.
  unsigned char bytes_[sizeof(sockaddr_in6)] = {};
  socklen_t length_;
};

class ReplyQueue;

// One event loop of a server, with the tasks it runs.
struct Worker {
  // One request's task: its cancel state (the task is a root, EventLoop::start_root), in the
  // worker's list so shutdown can cancel it. The only allocation per request besides the
  // handler's frame and the connection.
  struct Record : CancelState {
    Record(Worker& w, const Address& client) : worker(&w), peer(client) {}
    Worker* worker;
    Record* prev = nullptr;
    Record* next = nullptr;
    std::coroutine_handle<> task;
    PeerAddress peer;
  };

  explicit Worker(AsyncServerBase& s) : server(&s) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Tasks that never ended (the loop failed) are destroyed while their loop still exists: their
  // frames' destructors close their connections through it. (Defined after ReplyQueue.)
  ~Worker();
  void link(Record& r) noexcept {
    r.next = records;
    if (records) records->prev = &r;
    records = &r;
  }
  void unlink(Record& r) noexcept {
    (r.prev ? r.prev->next : records) = r.next;
    if (r.next) r.next->prev = r.prev;
  }

  AsyncServerBase* server;
  std::unique_ptr<EventLoop> loop;
  Socket* socket = nullptr;  // what this loop receives from: the server's, or its own
  IoState listener;          // *socket, as registered on this loop
  Record* records = nullptr;
  CancelState receive_cancel;
  bool receiving = false;
  bool shutting_down = false;
  TimerHandle grace_timer;
  // AsyncUDPServer: the replies this loop gathers (after `loop`: destroyed first, while the
  // loop its retry timer is armed on still exists).
  std::unique_ptr<ReplyQueue> replies;
};

namespace {

// Waits until the server's socket is readable on this worker's loop.
class WaitReadable : private IoWaiter {
 public:
  explicit WaitReadable(Worker& w) noexcept : worker_(w) {
    state = &w.listener;
    is_reader = true;
  }
  WaitReadable(const WaitReadable&) = delete;
  WaitReadable& operator=(const WaitReadable&) = delete;
  ~WaitReadable() { EventLoop::forget_wait(*this); }
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    handle = h;
    cancel = cancel_state_of(h);
    return worker_.loop->wait_io(*this, std::nullopt);
  }
  void await_resume() const {
    if (error) throw_error({error, std::generic_category()}, "wait for requests");
  }

 private:
  Worker& worker_;
};

bool is_cancellation(const std::system_error& e) {
  return e.code() == std::errc::operation_canceled;
}

// EMFILE and friends: the pending connection stays queued, so retrying at once would spin.
bool out_of_resources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

}  // namespace
}  // namespace detail

using detail::Worker;

struct AsyncServerBase::UnixSocketFile : sys::OwnedSocketFile {};

AsyncServerBase::AsyncServerBase(const Address& address, int socket_type)
    : server_address(address),
      socket(address.family(), socket_type),
      socket_file_(std::make_unique<UnixSocketFile>()) {}

AsyncServerBase::~AsyncServerBase() { socket_file_->remove(); }

void AsyncServerBase::bind_and_activate() {
  try {
    server_bind();
    server_activate();
    // Now rather than when serving starts: no client reaches only the first loop meanwhile.
    open_loop_sockets();
  } catch (...) {
    server_close();
    throw;
  }
}

void AsyncServerBase::server_bind() {
  if (allow_reuse_address && server_address.is_inet()) socket.set_reuse_address(true);
  if ((allow_reuse_port || listener_per_loop) && server_address.is_inet()) {
    socket.set_reuse_port(true);
  }
  sys::OwnedSocketFile::prepare(server_address, socket.type());
  socket.bind(server_address);
  server_address = socket.getsockname();
  socket_file_->remember(server_address);
  socket.setblocking(false);
}

void AsyncServerBase::adopt_socket(Socket bound) {
  socket = std::move(bound);
  server_address = socket.getsockname();
  socket.setblocking(false);
  apply_socket_options(socket);
}

Task<void> AsyncServerBase::wait_for_capacity() {
  bool logged = false;
  while (active_.load() >= max_connections) {
    if (!logged) {
      log(LogLevel::warning, "sockserv: " + server_address.to_string() + " at capacity (" +
                                 std::to_string(max_connections) +
                                 " tasks); not accepting until one ends");
      logged = true;
    }
    co_await sleep(std::chrono::milliseconds(10));
  }
}

void AsyncServerBase::report_task_error(const Address& client_address,
                                        const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const TimeoutError& e) {
    ServerStats::add(stats.timed_out);
    log(LogLevel::info,
        "connection from " + client_address.to_string() + " timed out (" + e.what() + ")");
  } catch (const SSLEOFError& e) {
    // As the blocking servers: the client closed without close_notify (common); the handler
    // was told by the exception, the log says it in a line.
    log(LogLevel::info, "connection from " + client_address.to_string() +
                            " ended without TLS close_notify (" + e.what() + ")");
  } catch (const std::system_error& e) {
    if (detail::is_cancellation(e)) return;
    ServerStats::add(stats.handler_errors);
    handle_error(client_address, error);
  } catch (...) {
    ServerStats::add(stats.handler_errors);
    handle_error(client_address, error);
  }
}

void AsyncServerBase::open_loop_sockets() {
  if (!listener_per_loop || !server_address.is_inet() || !socket) return;
  while (loop_sockets_.size() + 1 < threads) {
    try {
      Socket s(server_address.family(), socket.type());
      s.set_reuse_address(true);
      s.set_reuse_port(true);
      s.bind(server_address);
      s.setblocking(false);
      activate(s);
      loop_sockets_.push_back(std::move(s));
    } catch (const std::exception& e) {  // e.g. an adopted socket without SO_REUSEPORT
      log(LogLevel::warning, "sockserv: loops " + std::to_string(loop_sockets_.size() + 1) +
                                 " and up share the server's socket: " + e.what());
      return;
    }
  }
}

void AsyncServerBase::server_close() {
  socket_file_->remove();
  socket.close();
  loop_sockets_.clear();
}

void AsyncServerBase::handle_error(const Address& client_address, std::exception_ptr error) {
  sys::report_exception(
      "Exception occurred during processing of request from " + client_address.to_string(),
      std::move(error));
}

void AsyncServerBase::serve_forever() {
  {
    std::lock_guard lock(mutex_);
    if (serving_) throw std::logic_error("serve_forever: the server is already serving");
    serving_ = true;
    workers_.clear();
    open_loop_sockets();  // more loops than when the server was activated
    for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) {
      auto w = std::make_unique<Worker>(*this);
      w->loop = std::make_unique<EventLoop>(backend);
      w->socket = i > 0 && i <= loop_sockets_.size() ? &loop_sockets_[i - 1] : &socket;
      workers_.push_back(std::move(w));
    }
  }
  std::vector<Thread> others;
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    others.emplace_back([this, w = workers_[i].get()] { run_worker(*w); });
  }
  run_worker(*workers_[0]);
  for (auto& t : others) t.join();
  std::lock_guard lock(mutex_);
  workers_.clear();  // destroys the loops (and any task that never ended)
  serving_ = false;
  stopping_ = false;  // a shutdown() is consumed by the serve_forever() it stopped
  stopped_.notify_all();
}

void AsyncServerBase::run_worker(Worker& w) {
  try {
    w.listener.fd = w.socket->fileno();
    w.listener.edge_triggered = true;
    // A socket shared by several loops wakes only one of them per connection (epoll).
    w.listener.exclusive = w.socket == &socket && workers_.size() > 1;
    w.loop->add_io(w.listener);
    w.receiving = true;
    auto guarded = [](AsyncServerBase* self, Worker* worker) -> Task<void> {
      try {
        co_await self->receive_loop(*worker);
      } catch (const std::system_error& e) {
        if (!detail::is_cancellation(e)) throw;
      }
      worker->receiving = false;
      if (worker->shutting_down && !worker->records) worker->loop->stop();
    };
    w.loop->spawn(guarded(this, &w), &w.receive_cancel);
    if (stopping_) begin_shutdown(w);
    w.loop->run_forever();
    w.loop->remove_io(w.listener);
  } catch (...) {
    sys::report_exception("sockserv: event loop failed", std::current_exception());
  }
}

void AsyncServerBase::shutdown() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  if (!serving_) return;
  bool on_our_loop = false;
  for (auto& w : workers_) {
    w->loop->call_soon_threadsafe([this, worker = w.get()] { begin_shutdown(*worker); });
    on_our_loop = on_our_loop || EventLoop::current() == w->loop.get();
  }
  if (on_our_loop) return;  // a handler asked: the loops stop once it returns
  stopped_.wait(lock, [this] { return !serving_; });
}

void AsyncServerBase::begin_shutdown(Worker& w) {
  if (w.shutting_down) return;
  w.shutting_down = true;
  w.receive_cancel.cancel();  // stop accepting
  // A loop's own listener leaves the kernel's table at once (as `sockserv serve` does with the
  // server's): new clients are refused or go to another process, not queued for nobody.
  if (w.socket != &socket && w.socket->type() == SOCK_STREAM) {
    ::shutdown(w.socket->fileno(), SHUT_RD);
  }
  auto cancel_all = [&w] {
    for (auto* r = w.records; r; r = r->next) r->cancel();
  };
  if (!w.records && !w.receiving) return w.loop->stop();
  if (shutdown_grace.count() > 0) {
    w.grace_timer = w.loop->call_later(shutdown_grace, cancel_all);
  } else {
    cancel_all();
  }
}

template <class MakeTask>
void AsyncServerBase::start_task(Worker& w, const Address& client_address, MakeTask&& make_task) {
  auto record = std::make_unique<Worker::Record>(w, client_address);
  record->on_root_done = &AsyncServerBase::finish_task;
  try {
    Task<void> task = make_task(static_cast<CancelState&>(*record));
    record->task = w.loop->start_root(std::move(task), *record);
  } catch (...) {  // no memory, or the connection could not be registered: this request only
    ServerStats::add(stats.handler_errors);
    handle_error(client_address, std::current_exception());
    return;
  }
  w.link(*record.release());
  ++active_;
  ServerStats::add(stats.active);
}

// (`error` by value: the signature of CancelState::on_root_done.)
void AsyncServerBase::finish_task(CancelState& state,
                                  std::exception_ptr error) noexcept {  // NOLINT(performance-*)
  auto* record = static_cast<Worker::Record*>(&state);
  Worker& w = *record->worker;
  AsyncServerBase& self = *w.server;
  if (error) self.report_task_error(record->peer.get(), error);
  w.unlink(*record);
  delete record;
  --self.active_;
  self.stats.active.fetch_sub(1, std::memory_order_relaxed);
  if (w.shutting_down && !w.records) {
    w.grace_timer.cancel();
    if (!w.receiving) w.loop->stop();
  }
}

// ---- TCP and Unix stream
// -------------------------------------------------------------------------

AsyncTCPServer::AsyncTCPServer(const Address& address, ConnectionHandler handler,
                               bool bind_and_activate)
    : AsyncServerBase(address, SOCK_STREAM), RequestHandlerClass(std::move(handler)) {
  if (bind_and_activate) this->bind_and_activate();
}

void AsyncTCPServer::server_activate() { activate(socket); }

void AsyncTCPServer::activate(Socket& s) {
  s.listen(request_queue_size);
  apply_socket_options(s);
}

void AsyncTCPServer::apply_socket_options(Socket& s) {
  if (!server_address.is_inet()) return;
  if (keepalive) s.set_keepalive(*keepalive);
  if (tcp_user_timeout) s.set_user_timeout(*tcp_user_timeout);
}

bool AsyncTCPServer::verify_request(const Address&) { return true; }

Task<void> AsyncTCPServer::receive_loop(Worker& w) {
  std::chrono::milliseconds backoff{0};
  // Edge-triggered: accept until EAGAIN, and only then wait for the next edge (an edge that came
  // before the first wait is not lost that way). Yield to the connections every 64 accepts.
  for (;; co_await detail::WaitReadable(w)) {
    for (int accepted = 0;; ++accepted) {
      if (accepted == 64) {
        co_await sleep(std::chrono::nanoseconds::zero());
        accepted = 0;
      }
      Address peer;
      socklen_t len = Address::capacity();
      const int fd = ::accept4(w.listener.fd, peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const int error = errno;
        if (sys::would_block(error)) break;
        if (error == ECONNABORTED || error == EINTR || error == EPROTO || error == EPERM) continue;
        // EINVAL: the socket does not listen any more (shutdown(SHUT_RD), as `sockserv serve`
        // does when it starts draining): nothing will ever be accepted, end quietly.
        if (error == EINVAL) co_return;
        ServerStats::add(stats.accept_errors);
        backoff =
            std::clamp(backoff * 2, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
        sys::report_line("sockserv: accept " + server_address.to_string() + ": " +
                         std::generic_category().message(error) + "; retrying in " +
                         std::to_string(backoff.count()) + " ms");
        co_await sleep(backoff);
        if (!detail::out_of_resources(error)) break;
        continue;
      }
      backoff = std::chrono::milliseconds(0);
      peer.resize(len);
      ServerStats::add(stats.accepted);
      if (!verify_request(peer)) {
        ServerStats::add(stats.rejected);
        ::close(fd);
        continue;
      }
      if (active_tasks() >= max_connections) co_await wait_for_capacity();
      start_connection(w, Socket::adopt(fd, server_address.family(), SOCK_STREAM, true), peer);
    }
  }
}

void AsyncTCPServer::start_connection(Worker& w, Socket sock, const Address& peer) {
  start_task(w, peer, [&](CancelState& owner) {
    Connection conn(std::move(sock));
    conn.settimeout(connection_timeout);
    conn.set_owner(&owner);  // the task is cancelled if the peer hangs up while it works
    conn.set_stats(&stats);  // the connection adds its byte counts when it closes
    if (auto context = ssl_context()) return serve_tls(std::move(conn), peer, std::move(context));
    // The handler is the task itself: no coroutine frame around it, which an idle connection
    // would keep for its whole life.
    if (!proxy_protocol) return RequestHandlerClass(std::move(conn));
    return serve_proxied(std::move(conn), peer);
  });
}

Task<void> AsyncTCPServer::serve_proxied(Connection conn, Address peer) {
  // (Not `if (!co_await ...)`: GCC 12 skips such a co_await in a coroutine with no local yet.)
  const bool accepted = co_await accept_proxy_header(conn, peer);
  if (!accepted) co_return;
  try {
    co_await RequestHandlerClass(std::move(conn));
  } catch (...) {
    report_task_error(peer, std::current_exception());  // with the real client's address
  }
}

Task<bool> AsyncTCPServer::accept_proxy_header(Connection& conn, Address& peer) {
  try {
    const auto header = co_await read_proxy_header(conn);
    if (!header.local) peer = header.source;
    conn.set_peer_address(peer);
    co_return true;
  } catch (const std::exception& e) {
    ServerStats::add(stats.rejected);
    log(LogLevel::warning,
        "PROXY header from " + peer.to_string() + ": " + e.what() + "; closing the connection");
  }
  co_return false;
}

AsyncUnixStreamServer::AsyncUnixStreamServer(const Address& address, ConnectionHandler handler,
                                             bool bind_and_activate)
    : AsyncTCPServer(address, std::move(handler), false) {
  if (!address.is_unix()) throw std::invalid_argument("AsyncUnixStreamServer needs a Unix address");
  if (bind_and_activate) this->bind_and_activate();
}

// ---- UDP
// -----------------------------------------------------------------------------------------

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
    std::size_t offset;
    std::size_t size;
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
        entries_[kept++] = std::move(entries_[i]);
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

Worker::~Worker() {
  while (records) {
    auto* r = records;
    unlink(*r);
    r->task.destroy();
    delete r;
  }
}

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
  if (!w.replies) w.replies = std::make_unique<detail::ReplyQueue>(*this, w);
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
        Datagram d{std::string(batch.data(i)), batch.sender(i), w.socket, &replies};
        ServerStats::add(stats.accepted);
        ServerStats::add(stats.bytes_in, d.data.size());
        if (active_tasks() >= max_connections) {
          replies.end_batch();  // what the started handlers reply meanwhile goes out at once
          co_await wait_for_capacity();
          replies.begin_batch();
        }
        start_task(w, d.address, [&](CancelState&) { return RequestHandlerClass(std::move(d)); });
      }
      // One loop turn: the handlers just started run (to their first suspension), gathering
      // their replies, which the guard then sends with one sendmmsg.
      co_await sleep(std::chrono::nanoseconds::zero());
    }
  }
}

}  // namespace sockserv::aio
