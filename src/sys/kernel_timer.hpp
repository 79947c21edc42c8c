// SPDX-License-Identifier: MIT
// Timeouts a blocking socket call enforces in the kernel (SO_RCVTIMEO / SO_SNDTIMEO), so a timed
// call is one syscall, as an untimed one is: no poll() before or after it. See
// docs/adr/0004-kernel-timers.md for why, and for what the slack below buys.
#pragma once

#include <chrono>
#include <cstdint>
#include <system_error>

namespace sockserv::sys {

// Makes the next blocking call on `fd` in `option`'s direction (SO_RCVTIMEO or SO_SNDTIMEO)
// give up with EAGAIN at most `left` from now, slack aside. `installed_us` is the timer the
// descriptor carries (microseconds; 0: none), kept by the caller, and updated here.
//
// The common case costs nothing: a timer set for a previous call is kept when it is no longer
// than `left` plus a small slack (1 ms + 1/256 of `left`, below the kernel's own rounding to
// jiffies in most cases), and also when it is shorter: the call then wakes early with EAGAIN
// and the caller arms again with `woke_early` set, which replaces a short timer by the full
// remaining time. Returns false with `ec` when setsockopt fails.
bool arm_kernel_timer(int fd, int option, std::chrono::nanoseconds left,
                      std::uint32_t& installed_us, bool woke_early, std::error_code& ec) noexcept;

// Removes the timer (0: wait without limit), if there is one.
std::error_code clear_kernel_timer(int fd, int option, std::uint32_t& installed_us) noexcept;

}  // namespace sockserv::sys
