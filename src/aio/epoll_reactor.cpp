// SPDX-License-Identifier: MIT
#include "aio/reactor.hpp"

#include <sockserv/error.hpp>

#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <string_view>

namespace sockserv::aio::detail {
namespace {

// Connections are registered edge-triggered for both directions: the loop tries each recv/send
// first and only waits after EAGAIN, so an edge can never be missed, and no epoll_ctl is needed
// per operation - the main saving over a level-triggered loop that toggles EPOLLOUT.
class EpollReactor final : public Reactor {
 public:
  EpollReactor() : epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (epfd_ < 0) throw_errno("epoll_create1");
  }
  ~EpollReactor() override { ::close(epfd_); }

  std::error_code add(IoState& state) noexcept override { return ctl(EPOLL_CTL_ADD, state); }
  std::error_code update(IoState& state) noexcept override {
    return state.edge_triggered ? std::error_code{} : ctl(EPOLL_CTL_MOD, state);
  }
  void remove(IoState& state) noexcept override {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, state.fd, nullptr);
  }
  bool level_only() const noexcept override { return false; }

  std::error_code wait(int timeout_ms, std::vector<ReadyIo>& out) noexcept override {
    const int n = ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
    if (n < 0)
      return errno == EINTR ? std::error_code{} : std::error_code(errno, std::generic_category());
    for (int i = 0; i < n; ++i) {
      const auto& ev = events_[static_cast<std::size_t>(i)];
      unsigned ready = 0;
      if (ev.events & (EPOLLIN | EPOLLRDHUP)) ready |= io_read;
      if (ev.events & EPOLLRDHUP) ready |= io_peer_closed;
      if (ev.events & EPOLLOUT) ready |= io_write;
      if (ev.events & (EPOLLHUP | EPOLLERR)) ready |= io_hangup | io_read | io_write;
      out.push_back({static_cast<IoState*>(ev.data.ptr), ready});
    }
    return {};
  }

 private:
  std::error_code ctl(int op, IoState& state) noexcept {
    epoll_event ev{};
    if (state.edge_triggered) {
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      // A listener shared by several loops wakes one of them per event, not all (no herd).
      if (state.exclusive && op == EPOLL_CTL_ADD) ev.events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE;
    } else {
      ev.events = ((state.interest & io_read) ? EPOLLIN : 0u) |
                  ((state.interest & io_write) ? EPOLLOUT : 0u);
    }
    ev.data.ptr = &state;
    if (::epoll_ctl(epfd_, op, state.fd, &ev) == 0) return {};
    return {errno, std::generic_category()};
  }

  int epfd_;
  std::array<epoll_event, 512> events_{};
};

}  // namespace

std::unique_ptr<Reactor> make_epoll_reactor() { return std::make_unique<EpollReactor>(); }

std::unique_ptr<Reactor> make_reactor(EventLoop::Backend& backend) {
  if (backend == EventLoop::Backend::automatic) {
    const std::string_view forced =
        std::getenv("SOCKSERV_POLLER") ? std::getenv("SOCKSERV_POLLER") : "";
    backend = forced == "poll"       ? EventLoop::Backend::poll
              : forced == "io_uring" ? EventLoop::Backend::io_uring
                                     : EventLoop::Backend::epoll;
  }
  switch (backend) {
    case EventLoop::Backend::poll:
      return make_poll_reactor();
    case EventLoop::Backend::io_uring:
      return make_uring_reactor();
    default:
      return make_epoll_reactor();
  }
}

#ifndef SOCKSERV_HAVE_LIBURING
std::unique_ptr<Reactor> make_uring_reactor() {
  throw_error(std::make_error_code(std::errc::function_not_supported), "EventLoop",
              "(io_uring backend: sockserv was built without liburing)");
}
#endif

}  // namespace sockserv::aio::detail
