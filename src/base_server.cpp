// SPDX-License-Identifier: MIT
// BaseServer: the request loop and the hooks' default behaviour (Python's BaseServer).
#include <sockserv/error.hpp>
#include <sockserv/log.hpp>
#include <sockserv/selector.hpp>
#include <sockserv/server.hpp>

#include "access/gate.hpp"
#include "sys/fd.hpp"
#include "sys/report.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

namespace sockserv {

using Clock = std::chrono::steady_clock;

BaseServer::BaseServer(Address address, RequestHandlerFactory handler)
    : server_address(std::move(address)),
      RequestHandlerClass(std::move(handler)),
      wakeup_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (wakeup_fd_ < 0) throw_errno("eventfd");
}

BaseServer::~BaseServer() { ::close(wakeup_fd_); }

void BaseServer::bind_and_activate() {
  try {
    server_bind();
    server_activate();
  } catch (...) {
    server_close();  // no descriptor survives a failed bind (Python's bpo-22435)
    throw;
  }
}

bool BaseServer::serving() const {
  std::lock_guard lock(mutex_);
  return serving_;
}

void BaseServer::wake() const noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wakeup_fd_, &one, sizeof one);
}

void BaseServer::drain_wakeup() const noexcept {
  std::uint64_t count;
  [[maybe_unused]] const auto n = ::read(wakeup_fd_, &count, sizeof count);
}

void BaseServer::wait_for_wakeup(std::chrono::nanoseconds duration) const noexcept {
  std::error_code ec;
  sys::poll_one(wakeup_fd_, POLLIN, Clock::now() + duration, ec);
}

void BaseServer::serve_forever(std::chrono::duration<double> poll_interval) {
  {
    std::lock_guard lock(mutex_);
    if (serving_) throw std::logic_error("serve_forever: the server is already serving");
    serving_ = true;
    serving_thread_ = std::this_thread::get_id();
  }
  // Clears the stop request and wakes shutdown() callers however the loop ends.
  struct Finish {
    BaseServer* self;
    ~Finish() {
      std::lock_guard lock(self->mutex_);
      self->shutdown_request_ = false;
      self->serving_ = false;
      self->drain_wakeup();
      self->stopped_.notify_all();
    }
  } finish{this};

  Selector selector;
  selector.register_(fileno(), EVENT_READ);
  selector.register_(wakeup_fd_, EVENT_READ);
  const auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(poll_interval);
  auto stop_requested = [this] {
    std::lock_guard lock(mutex_);
    return shutdown_request_;
  };
  bool paused = false;
  while (!stop_requested()) {
    // At capacity the listening socket is not watched: connections wait in the backlog until a
    // request ends (notify_capacity) or the next short tick looks again.
    if (const bool full = at_capacity(); full != paused) {
      paused = full;
      if (paused) {
        selector.unregister(fileno());
        log(LogLevel::warning, "sockserv: " + server_address.to_string() + " at capacity (" +
                                   std::to_string(max_connections) +
                                   " requests); not accepting until one ends");
      } else {
        selector.register_(fileno(), EVENT_READ);
      }
    }
    const auto ready = selector.select(
        paused ? std::min<std::chrono::nanoseconds>(interval, std::chrono::milliseconds(10))
               : interval);
    // Checked again after the wait, so a request that arrived together with shutdown() is not
    // accepted (Python's bpo-35017).
    if (stop_requested()) break;
    for (const auto& [key, events] : ready) {
      if (key->fd == wakeup_fd_) drain_wakeup();
      if (key->fd == fileno()) handle_request_noblock();
    }
    service_actions();
  }
}

void BaseServer::shutdown() {
  std::unique_lock lock(mutex_);
  shutdown_request_ = true;
  wake();
  if (!serving_ || serving_thread_ == std::this_thread::get_id()) return;
  stopped_.wait(lock, [this] { return !serving_; });
}

void BaseServer::handle_request() {
  // Python: one request, or handle_timeout() once `timeout` has passed without one. A wait cut
  // short (EINTR, a wake-up) waits again for the time that is left.
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  Selector selector;
  selector.register_(fileno(), EVENT_READ);
  for (;;) {
    const Timeout left =
        timeout ? Timeout(std::max(deadline - Clock::now(), Clock::duration{})) : Timeout{};
    if (!selector.select(left).empty()) return handle_request_noblock();
    if (timeout && Clock::now() >= deadline) return handle_timeout();
  }
}

void BaseServer::handle_request_noblock() {
  std::pair<Request, Address> next;
  try {
    next = get_request();
  } catch (const std::system_error& error) {
    handle_accept_error(error);
    return;
  }
  accept_backoff_ = std::chrono::milliseconds(0);
  ServerStats::add(stats.accepted);
  auto& [request, client_address] = next;
  if (!admit_peer(request)) {
    close_request(request);  // refused before anything is read: nothing to drain
    return;
  }
  if (!admit_request(request, client_address)) {
    shutdown_request(request);
    return;
  }
  if (!verify_request(request, client_address)) {
    ServerStats::add(stats.rejected);
    log(LogLevel::debug, "refused " + client_address.to_string() + " (verify_request)");
    shutdown_request(request);
    return;
  }
  // The exception boundary of one request (Python's _handle_request_noblock): an error from the
  // handler is reported and the server goes on; anything that is not a std::exception (thread
  // cancellation, a foreign exception) still closes the request, then propagates.
  try {
    process_request(request, client_address);
  } catch (const std::exception&) {
    report_request_error(request, client_address);
    shutdown_request(request);
  } catch (...) {
    shutdown_request(request);
    throw;
  }
}

void BaseServer::report_request_error(Request& request, const Address& client_address) noexcept {
  const auto error = std::current_exception();
  try {
    std::rethrow_exception(error);
  } catch (const TimeoutError& e) {
    // A stalled or trickling client: an expected event on the open internet, not a bug.
    ServerStats::add(stats.timed_out);
    log(LogLevel::info,
        "connection from " + client_address.to_string() + " timed out (" + e.what() + ")");
  } catch (...) {
    // A peer that reset or left mid-request is not the handler's failure: one line, counted.
    if (sys::report_peer_gone(error, client_address, stats)) return;
    ServerStats::add(stats.handler_errors);
    try {
      handle_error(request, client_address, error);
    } catch (...) {
      sys::report_exception("Exception in handle_error", std::current_exception());
    }
  }
}

void BaseServer::run_request(Request& request, const Address& client_address) noexcept {
  ServerStats::add(stats.active);
  try {
    finish_request(request, client_address);
  } catch (...) {
    report_request_error(request, client_address);
  }
  try {
    shutdown_request(request);
  } catch (...) {
    sys::report_exception("Exception in shutdown_request", std::current_exception());
  }
  stats.active.fetch_sub(1, std::memory_order_relaxed);
}

bool BaseServer::verify_request(Request&, const Address&) { return true; }

bool BaseServer::admit_request(Request& request, const Address& client_address) {
  Admission admission =
      detail::admit_client(access_policy.get(), client_address, stats, server_address);
  if (!admission) return false;
  request.keep_admission(std::move(admission));
  return true;
}

bool BaseServer::admit_peer(Request&) { return true; }

void BaseServer::process_request(Request& request, const Address& client_address) {
  ServerStats::add(stats.active);
  struct Done {
    ServerStats& stats;
    ~Done() { stats.active.fetch_sub(1, std::memory_order_relaxed); }
  } done{stats};
  finish_request(request, client_address);
  shutdown_request(request);
}

void BaseServer::finish_request(Request& request, const Address& client_address) {
  RequestHandlerClass(request, client_address, *this);
}

void BaseServer::shutdown_request(Request& request) { close_request(request); }

void BaseServer::close_request(Request&) {}

void BaseServer::handle_error(Request&, const Address& client_address, std::exception_ptr error) {
  sys::report_exception(
      "Exception occurred during processing of request from " + client_address.to_string(), error);
}

void BaseServer::handle_accept_error(const std::system_error& error) {
  ServerStats::add(stats.accept_errors);
  const auto code = error.code();
  if (code.category() == std::generic_category() || code.category() == std::system_category()) {
    switch (code.value()) {
      case ECONNABORTED:
      case EINTR:
      case EAGAIN:
      case EPROTO:
      case EPERM:  // a firewall rule refused the connection
        return;
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM:
        // Out of descriptors or memory: the pending connection stays in the backlog, so an
        // immediate retry would spin. Back off, 5 ms doubling to 1 s, and let shutdown() cut
        // the wait short.
        accept_backoff_ = std::clamp(accept_backoff_ * 2, std::chrono::milliseconds(5),
                                     std::chrono::milliseconds(1000));
        log(LogLevel::warning, "sockserv: " + std::string(error.what()) + "; retrying in " +
                                   std::to_string(accept_backoff_.count()) + " ms");
        wait_for_wakeup(accept_backoff_);
        return;
      default:
        break;
    }
  }
  log(LogLevel::warning, "sockserv: " + std::string(error.what()));
}

}  // namespace sockserv
