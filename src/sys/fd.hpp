// SPDX-License-Identifier: MIT
// Syscall shims shared by the sockets layer: one place for errno handling and EINTR retries.
#pragma once

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <system_error>

namespace sockserv::sys {

inline std::error_code last_error() noexcept { return {errno, std::generic_category()}; }

// Runs `call` until it does not fail with EINTR (PEP 475's rule: a signal never surfaces as an
// error from a socket call). Returns the call's result; errno is left as the call set it.
template <class Call>
auto retry_eintr(Call call) noexcept {
  for (;;) {
    auto result = call();
    if (result != -1 || errno != EINTR) return result;
  }
}

inline bool would_block(int error) noexcept { return error == EAGAIN || error == EWOULDBLOCK; }

// poll(2) on one descriptor until `events` are ready or `deadline` passes. Returns the revents,
// or 0 when the deadline passed. EINTR recomputes the remaining time and waits again.
short poll_one(int fd, short events, std::chrono::steady_clock::time_point deadline,
               std::error_code& ec) noexcept;

// Sets or clears O_NONBLOCK.
std::error_code set_nonblocking(int fd, bool on) noexcept;

// Unlinks a Unix socket file if nothing is listening on it any more (a stale file left by a
// server that died). `type` is the socket type the new server will use. Returns true when it
// removed the file.
bool remove_stale_unix_socket(const char* path, int type) noexcept;

}  // namespace sockserv::sys
