// SPDX-License-Identifier: MIT
#include "aio/reactor.hpp"

#include <poll.h>

#include <cerrno>
#include <vector>

namespace sockserv::aio::detail {
namespace {

// poll(2) has no edge-triggered mode, so every state here is level-triggered and its interest
// follows its waiters (EventLoop::update_interest). The pollfd array and the state list stay
// parallel; removal moves the last entry into the hole (O(1)).
class PollReactor final : public Reactor {
 public:
  std::error_code add(IoState& state) noexcept override {
    state.backend_slot = fds_.size();
    fds_.push_back({state.fd, events_for(state), 0});
    states_.push_back(&state);
    return {};
  }
  std::error_code update(IoState& state) noexcept override {
    auto& p = fds_[state.backend_slot];
    p.events = events_for(state);
    // poll reports a hang-up whatever the interest; once it has been seen and nobody waits, the
    // descriptor leaves the set (a negative fd is skipped) so it cannot make the loop spin.
    p.fd = state.hung_up && state.interest == 0 ? -1 : state.fd;
    return {};
  }
  void remove(IoState& state) noexcept override {
    const std::size_t hole = state.backend_slot;
    if (hole >= states_.size() || states_[hole] != &state) return;
    fds_[hole] = fds_.back();
    states_[hole] = states_.back();
    states_[hole]->backend_slot = hole;
    fds_.pop_back();
    states_.pop_back();
  }
  bool level_only() const noexcept override { return true; }

  std::error_code wait(int timeout_ms, std::vector<ReadyIo>& out) noexcept override {
    const int n = ::poll(fds_.data(), fds_.size(), timeout_ms);
    if (n < 0)
      return errno == EINTR ? std::error_code{} : std::error_code(errno, std::generic_category());
    for (std::size_t i = 0; i < fds_.size(); ++i) {
      const short re = fds_[i].revents;
      if (re == 0) continue;
      unsigned ready = 0;
      if (re & POLLIN) ready |= io_read;
      if (re & POLLOUT) ready |= io_write;
      if (re & (POLLHUP | POLLERR | POLLNVAL)) ready |= io_hangup | io_read | io_write;
      out.push_back({states_[i], ready});
    }
    return {};
  }

 private:
  static short events_for(const IoState& state) noexcept {
    return static_cast<short>(((state.interest & io_read) ? POLLIN : 0) |
                              ((state.interest & io_write) ? POLLOUT : 0));
  }
  std::vector<pollfd> fds_;
  std::vector<IoState*> states_;
};

}  // namespace

std::unique_ptr<Reactor> make_poll_reactor() { return std::make_unique<PollReactor>(); }

}  // namespace sockserv::aio::detail
