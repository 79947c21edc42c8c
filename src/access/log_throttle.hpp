// SPDX-License-Identifier: MIT
// Private: at most one log line per second for a kind of event a peer can cause at will (a
// refusal), so a flood cannot flood the log; the events left out are counted into the next line.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

namespace sockserv::detail {

class LogThrottle {
 public:
  // When a line may be written now: the number of events left out since the last line.
  // nullopt: leave this one out (it is counted). Thread-safe.
  std::optional<std::uint64_t> admit() noexcept {
    const std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (logged_once_ && now - last_ < std::chrono::seconds(1)) {
      ++left_out_;
      return std::nullopt;
    }
    logged_once_ = true;
    last_ = now;
    return std::exchange(left_out_, 0);
  }

 private:
  std::mutex mutex_;
  bool logged_once_ = false;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t left_out_ = 0;
};

}  // namespace sockserv::detail
