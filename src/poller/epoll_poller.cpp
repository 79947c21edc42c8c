// SPDX-License-Identifier: MIT
#include "poller/poller.hpp"
#include "sys/fd.hpp"

#include <sockserv/error.hpp>

#include <sys/epoll.h>
#include <unistd.h>

#include <array>

namespace sockserv::detail {
namespace {

std::uint32_t to_epoll(unsigned events) noexcept {
  return ((events & EVENT_READ) ? EPOLLIN : 0u) | ((events & EVENT_WRITE) ? EPOLLOUT : 0u);
}

class EpollPoller final : public Poller {
 public:
  EpollPoller() : epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (epfd_ < 0) throw_errno("epoll_create1");
  }
  ~EpollPoller() override { ::close(epfd_); }

  std::error_code add(int fd, unsigned events) noexcept override {
    return ctl(EPOLL_CTL_ADD, fd, events);
  }
  std::error_code modify(int fd, unsigned events) noexcept override {
    return ctl(EPOLL_CTL_MOD, fd, events);
  }
  std::error_code remove(int fd) noexcept override { return ctl(EPOLL_CTL_DEL, fd, 0); }

  std::error_code wait(int timeout_ms, std::vector<ReadyFd>& out) noexcept override {
    const int n = ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
    if (n < 0) return errno == EINTR ? std::error_code{} : sys::last_error();
    for (int i = 0; i < n; ++i) {
      const auto ev = events_[static_cast<std::size_t>(i)].events;
      unsigned ready = 0;
      // An error or hang-up is reported as readable and writable: the next call on the socket
      // then returns the error (or EOF), which is where the program learns about it.
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) ready |= EVENT_READ;
      if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ready |= EVENT_WRITE;
      out.push_back({events_[static_cast<std::size_t>(i)].data.fd, ready});
    }
    return {};
  }

 private:
  std::error_code ctl(int op, int fd, unsigned events) noexcept {
    epoll_event ev{};
    ev.events = to_epoll(events);
    ev.data.fd = fd;
    return ::epoll_ctl(epfd_, op, fd, &ev) == 0 ? std::error_code{} : sys::last_error();
  }

  int epfd_;
  std::array<epoll_event, 256> events_{};
};

}  // namespace

std::unique_ptr<Poller> make_epoll_poller() { return std::make_unique<EpollPoller>(); }

}  // namespace sockserv::detail
