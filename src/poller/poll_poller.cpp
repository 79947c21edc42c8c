// SPDX-License-Identifier: MIT
#include "poller/poller.hpp"
#include "sys/fd.hpp"

#include <poll.h>

#include <unordered_map>

namespace sockserv::detail {
namespace {

short to_poll(unsigned events) noexcept {
  return static_cast<short>(((events & EVENT_READ) ? POLLIN : 0) |
                            ((events & EVENT_WRITE) ? POLLOUT : 0));
}

// The portable fallback: a pollfd array rebuilt into place as descriptors come and go. Removal
// swaps the last entry into the hole, so every operation is O(1) except wait() itself.
class PollPoller final : public Poller {
 public:
  std::error_code add(int fd, unsigned events) noexcept override {
    if (index_.contains(fd)) return std::make_error_code(std::errc::file_exists);
    index_[fd] = fds_.size();
    fds_.push_back({fd, to_poll(events), 0});
    return {};
  }
  std::error_code modify(int fd, unsigned events) noexcept override {
    const auto it = index_.find(fd);
    if (it == index_.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
    fds_[it->second].events = to_poll(events);
    return {};
  }
  std::error_code remove(int fd) noexcept override {
    const auto it = index_.find(fd);
    if (it == index_.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
    const std::size_t hole = it->second;
    index_.erase(it);
    if (hole + 1 != fds_.size()) {
      fds_[hole] = fds_.back();
      index_[fds_[hole].fd] = hole;
    }
    fds_.pop_back();
    return {};
  }
  std::error_code wait(int timeout_ms, std::vector<ReadyFd>& out) noexcept override {
    const int n = ::poll(fds_.data(), fds_.size(), timeout_ms);
    if (n < 0) return errno == EINTR ? std::error_code{} : sys::last_error();
    for (const auto& p : fds_) {
      if (p.revents == 0) continue;
      unsigned ready = 0;
      if (p.revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) ready |= EVENT_READ;
      if (p.revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)) ready |= EVENT_WRITE;
      out.push_back({p.fd, ready});
    }
    return {};
  }

 private:
  std::vector<pollfd> fds_;
  std::unordered_map<int, std::size_t> index_;
};

}  // namespace

std::unique_ptr<Poller> make_poll_poller() { return std::make_unique<PollPoller>(); }

}  // namespace sockserv::detail
