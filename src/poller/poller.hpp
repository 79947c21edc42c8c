// SPDX-License-Identifier: MIT
// Poller: the private readiness backend behind Selector (and later the event loop). One small
// interface, two implementations (epoll, poll), chosen in make_poller() in one place.
#pragma once

#include <sockserv/selector.hpp>

#include <memory>
#include <system_error>
#include <vector>

namespace sockserv::detail {

struct ReadyFd {
  int fd;
  unsigned events;  // EVENT_READ | EVENT_WRITE
};

class Poller {
 public:
  virtual ~Poller() = default;
  virtual std::error_code add(int fd, unsigned events) noexcept = 0;
  virtual std::error_code modify(int fd, unsigned events) noexcept = 0;
  virtual std::error_code remove(int fd) noexcept = 0;
  // Waits up to `timeout_ms` (-1: forever) and appends the ready descriptors to `out`. EINTR is
  // not an error: it returns with nothing appended.
  virtual std::error_code wait(int timeout_ms, std::vector<ReadyFd>& out) noexcept = 0;
};

std::unique_ptr<Poller> make_epoll_poller();
std::unique_ptr<Poller> make_poll_poller();

// automatic: epoll, unless the environment says SOCKSERV_POLLER=poll.
Selector::Backend resolve_backend(Selector::Backend requested) noexcept;

}  // namespace sockserv::detail
