// SPDX-License-Identifier: MIT
#include "sys/kernel_timer.hpp"

#include "sys/fd.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <limits>

namespace sockserv::sys {
namespace {

constexpr std::uint64_t max_timer_us = std::numeric_limits<std::uint32_t>::max();  // ~71 min

bool install(int fd, int option, std::uint64_t us, std::uint32_t& installed_us,
             std::error_code& ec) noexcept {
  const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
  if (::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv) != 0) {
    ec = last_error();
    return false;
  }
  installed_us = static_cast<std::uint32_t>(us);
  return true;
}

}  // namespace

bool arm_kernel_timer(int fd, int option, std::chrono::nanoseconds left,
                      std::uint32_t& installed_us, bool woke_early, std::error_code& ec) noexcept {
  // Rounded up, so the kernel never gives up before the deadline; a wait longer than the field
  // holds is done in pieces of ~71 minutes (each early wake arms the next).
  const auto want = std::clamp<std::uint64_t>(
      static_cast<std::uint64_t>(std::chrono::ceil<std::chrono::microseconds>(left).count()), 1,
      max_timer_us);
  if (installed_us != 0) {
    const std::uint64_t slack = 1000 + want / 256;
    const bool overshoots = installed_us > want + slack;
    const bool too_short = woke_early && installed_us + slack < want;
    if (!overshoots && !too_short) return true;
  }
  return install(fd, option, want, installed_us, ec);
}

std::error_code clear_kernel_timer(int fd, int option, std::uint32_t& installed_us) noexcept {
  std::error_code ec;
  if (installed_us != 0) install(fd, option, 0, installed_us, ec);
  return ec;
}

}  // namespace sockserv::sys
