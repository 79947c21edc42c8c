// SPDX-License-Identifier: MIT
// The event-loop servers: loops and their threads, the accept loop, shutdown. (Datagrams:
// udp_server.cpp.)
#include <sockserv/aio/server.hpp>
#include <sockserv/aio/timeout.hpp>
#include <sockserv/error.hpp>
#include <sockserv/log.hpp>
#include <sockserv/proxy_protocol.hpp>
#include <sockserv/thread.hpp>

#include "access/credential_check.hpp"
#include "access/gate.hpp"
#include "aio/reactor.hpp"
#include "aio/server_worker.hpp"
#include "sys/fd.hpp"
#include "sys/report.hpp"
#include "sys/unix_file.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace sockserv::aio {
namespace detail {
namespace {

bool is_cancellation(const std::system_error& e) {
  return e.code() == std::errc::operation_canceled;
}

bool is_cancellation(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    return is_cancellation(e);
  } catch (...) {
    return false;
  }
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
      allow_reuse_address(socket_type == SOCK_STREAM),
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
  // Before listen(): until then a connect() is refused, so the default mode is never usable.
  set_socket_file_permissions(server_address, socket_file_permissions);
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
  } catch (const std::system_error& e) {
    if (detail::is_cancellation(e)) return;
    // As the blocking servers: a peer that reset or left mid-request is one line, counted.
    if (sys::report_peer_gone(error, client_address, stats)) return;
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

// (`error` by value: the signature of CancelState::on_root_done.)
void AsyncServerBase::finish_task(CancelState& state,
                                  std::exception_ptr error) noexcept {  // NOLINT(performance-*)
  auto* record = static_cast<Worker::Record*>(&state);
  Worker& w = *record->worker;
  AsyncServerBase& self = *w.server;
  if (error && record->peer_gone && detail::is_cancellation(error)) {
    // The peer left while the handler was busy elsewhere and the loop cancelled it: as a reset
    // seen by a read, one line below error level, counted.
    ServerStats::add(self.stats.peer_resets);
    log(LogLevel::info, "connection from " + record->peer.get().to_string() +
                            " lost by the peer (it hung up while the handler was busy; the "
                            "handler was cancelled)");
  } else if (error) {
    self.report_task_error(record->peer.get(), error);
  }
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

void AsyncTCPServer::server_activate() {
  sockserv::detail::require_credential_support(server_address, SOCK_STREAM, allowed_credentials);
  activate(socket);
}

void AsyncTCPServer::activate(Socket& s) {
  s.listen(request_queue_size);
  apply_socket_options(s);
}

void AsyncTCPServer::apply_socket_options(Socket& s) {
  if (!server_address.is_inet()) return;
  if (keepalive) s.set_keepalive(*keepalive);
  if (tcp_user_timeout) s.set_user_timeout(*tcp_user_timeout);
  if (disable_nagle_algorithm) s.set_nodelay(true);
}

bool AsyncTCPServer::verify_request(const Address&) { return true; }

namespace {

// A descriptor the backend's multishot accept queued, with its peer's address (the accept
// itself has none to give: its address buffer would be shared by every completion).
int accepted_by_completion(detail::Reactor& reactor, detail::IoState& listener, Address& peer,
                           socklen_t& len) {
  const int fd = reactor.take_accepted(listener);
  if (fd >= 0 && ::getpeername(fd, peer.data(), &len) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error == ENOTCONN ? ECONNABORTED : error;  // reset before we looked: skipped
    return -1;
  }
  return fd;
}

}  // namespace

Task<void> AsyncTCPServer::receive_loop(Worker& w) {
  std::chrono::milliseconds backoff{0};
  // Edge-triggered: accept until EAGAIN, and only then wait for the next edge (an edge that came
  // before the first wait is not lost that way). Yield to the connections every 64 accepts.
  // Under io_uring the descriptors come from a multishot accept the backend keeps armed (armed
  // again before each wait: after an error or a pause at the connection limit it has ended).
  // Not on a listener several loops share: the kernel hands every connection to the first
  // loop's accept, so one loop would get them all (epoll's EPOLLEXCLUSIVE spreads them; there
  // each loop's ring polls and the losers' accept4 says EAGAIN).
  auto& reactor = w.loop->reactor();
  const bool by_completion = reactor.can_accept() && !w.listener.exclusive;
  for (;; co_await detail::WaitReadable(w)) {
    for (int accepted = 0;; ++accepted) {
      if (accepted == 64) {
        co_await sleep(std::chrono::nanoseconds::zero());
        accepted = 0;
      }
      Address peer;
      socklen_t len = Address::capacity();
      const int fd =
          by_completion ? accepted_by_completion(reactor, w.listener, peer, len)
                        : ::accept4(w.listener.fd, peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
      // Before verify_request (an override cannot skip it) and before a task is started.
      if (!sockserv::detail::admit_credentials(fd, allowed_credentials, server_address, stats)) {
        ::close(fd);
        continue;
      }
      Admission admission;
      if (proxy_protocol) {  // the rules apply to the client the header names (serve_proxied)
        if (!sockserv::detail::admit_proxy(access_policy.get(), peer, stats, server_address)) {
          ::close(fd);
          continue;
        }
      } else if (!(admission = sockserv::detail::admit_client(access_policy.get(), peer, stats,
                                                              server_address))) {
        ::close(fd);
        continue;
      }
      if (!verify_request(peer)) {
        ServerStats::add(stats.rejected);
        ::close(fd);
        continue;
      }
      if (active_tasks() >= max_connections) {
        if (by_completion) reactor.stop_accepting(w.listener);  // the backlog holds the rest
        co_await wait_for_capacity();
        if (by_completion) reactor.start_accepting(w.listener);
      }
      start_connection(w, Socket::adopt(fd, server_address.family(), SOCK_STREAM, true), peer,
                       std::move(admission));
    }
    if (by_completion) reactor.start_accepting(w.listener);  // armed before every wait
  }
}

void AsyncTCPServer::start_connection(Worker& w, Socket sock, const Address& peer,
                                      Admission admission) {
  start_task(
      w, peer,
      [&](CancelState& owner) {
        Connection conn(std::move(sock));
        conn.settimeout(connection_timeout);
        conn.set_idle_timeout(idle_timeout);
        conn.set_owner(&owner);  // the task is cancelled if the peer hangs up while it works
        conn.set_stats(&stats);  // the connection adds its byte counts when it closes
        if (auto context = ssl_context()) {
          conn.read_with_syscalls();  // the TLS layer reads the socket (after a PROXY header)
          return serve_tls(std::move(conn), peer, std::move(context));
        }
        // The handler is the task itself: no coroutine frame around it, which an idle connection
        // would keep for its whole life.
        if (!proxy_protocol) return RequestHandlerClass(std::move(conn));
        return serve_proxied(std::move(conn), peer);
      },
      std::move(admission));
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
    // The rules and limits, for the client the header names; its place is held in the
    // connection's task (the owner's record) until the task ends.
    Admission admission =
        sockserv::detail::admit_client(access_policy.get(), peer, stats, server_address);
    if (!admission) co_return false;
    // The task's cancel state is its record (start_task), which lives as long as the task.
    CancelState* owner = co_await detail::CurrentCancelState{};
    static_cast<Worker::Record*>(owner)->admission = std::move(admission);
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

}  // namespace sockserv::aio
