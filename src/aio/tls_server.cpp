// SPDX-License-Identifier: MIT
// AsyncTCPServer's TLS: the handshake in the connection's own task, under a total deadline, with
// a cap on handshakes in progress that drops the oldest.
#include <sockserv/aio/server.hpp>
#include <sockserv/aio/timeout.hpp>
#include <sockserv/error.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include "tls/handshake_report.hpp"

#include <algorithm>
#include <sstream>

namespace sockserv::aio {

// One handshake in progress: a node in its loop's queue, oldest first, living in the frame of
// the connection's task (no allocation).
struct AsyncTCPServer::PendingHandshake {
  PendingHandshake(HandshakeQueue& q, CancelState* task_owner) noexcept;
  PendingHandshake(const PendingHandshake&) = delete;
  PendingHandshake& operator=(const PendingHandshake&) = delete;
  ~PendingHandshake() { unlink(); }
  void unlink() noexcept;

  HandshakeQueue* queue;
  CancelState* owner;
  PendingHandshake* prev = nullptr;
  PendingHandshake* next = nullptr;
  bool linked = true;
  bool evicted = false;
};

struct AsyncTCPServer::HandshakeQueue {
  PendingHandshake* oldest = nullptr;
  PendingHandshake* newest = nullptr;
  std::size_t size = 0;
};

AsyncTCPServer::PendingHandshake::PendingHandshake(HandshakeQueue& q,
                                                   CancelState* task_owner) noexcept
    : queue(&q), owner(task_owner), prev(q.newest) {
  (q.newest ? q.newest->next : q.oldest) = this;
  q.newest = this;
  ++q.size;
}

void AsyncTCPServer::PendingHandshake::unlink() noexcept {
  if (!std::exchange(linked, false)) return;
  (prev ? prev->next : queue->oldest) = next;
  (next ? next->prev : queue->newest) = prev;
  --queue->size;
}

AsyncTCPServer::~AsyncTCPServer() = default;

void AsyncTCPServer::set_ssl_context(std::shared_ptr<const SSLContext> context) {
  ssl_context_.set(std::move(context));
}

std::shared_ptr<const SSLContext> AsyncTCPServer::ssl_context() const { return ssl_context_.get(); }

AsyncTCPServer::HandshakeQueue& AsyncTCPServer::handshake_queue() {
  EventLoop* loop = EventLoop::current();
  const std::lock_guard lock(tls_mutex_);
  for (auto& [owner, queue] : handshake_queues_) {
    if (owner == loop) return *queue;
  }
  return *handshake_queues_.emplace_back(loop, std::make_shared<HandshakeQueue>()).second;
}

Task<void> AsyncTCPServer::serve_tls(Connection conn, Address peer,
                                     std::shared_ptr<const SSLContext> context) {
  if (proxy_protocol) {
    const bool accepted = co_await accept_proxy_header(conn, peer);
    if (!accepted) co_return;
  }
  // Bytes read past the PROXY header are the start of the ClientHello: TLS reads them first.
  auto& buffered = conn.read_buffer();
  // TCP_NODELAY: TLS 1.3's session tickets go out right after the handshake, and with Nagle on
  // the first reply would wait for their ACK, which a client delays 40 ms (as nginx does).
  if (conn.socket().family() != AF_UNIX) conn.socket().set_nodelay(true);
  attach_tls(conn.socket(), *context, true, {}, nullptr, buffered.view());
  buffered.consume(buffered.size());
  buffered.release();

  CancelState* owner = co_await detail::CurrentCancelState{};
  auto& queue = handshake_queue();
  const std::size_t cap =
      std::max<std::size_t>(1, max_handshakes / std::max<std::size_t>(1, threads));
  if (queue.size >= cap && queue.oldest != nullptr) {
    PendingHandshake* oldest = queue.oldest;
    oldest->unlink();
    oldest->evicted = true;
    if (oldest->owner != nullptr) oldest->owner->cancel();
  }
  PendingHandshake pending(queue, owner);
  try {
    co_await with_timeout(ssl_handshake_timeout, conn.do_handshake());
  } catch (const std::exception& e) {
    const bool cancelled = !pending.evicted && owner != nullptr && owner->cancelled;
    if (cancelled) co_return;  // the server is shutting down: quietly
    const bool timed_out = dynamic_cast<const TimeoutError*>(&e) != nullptr;
    std::string why = e.what();
    if (pending.evicted) {
      why = "dropped: " + std::to_string(cap) +
            " handshakes in progress on this loop (max_handshakes), oldest first";
    } else if (timed_out) {
      std::ostringstream text;
      text << "timed out: not done within ssl_handshake_timeout ("
           << std::chrono::duration<double>(ssl_handshake_timeout).count() << " s)";
      why = text.str();
    }
    tls::report_handshake_failure(stats, peer, why, timed_out);
    co_return;
  }
  pending.unlink();
  ServerStats::add(stats.tls_handshakes);
  try {
    co_await RequestHandlerClass(std::move(conn));
  } catch (...) {
    report_task_error(peer, std::current_exception());
  }
}

}  // namespace sockserv::aio
