// SPDX-License-Identifier: MIT
// Runs a piece of a test in a forked child that first becomes another user (nobody, 65534, by
// default): the real other-uid peer the Unix credential tests need. Tests run as root; without
// root the caller skips.
#pragma once

#include "test_support.hpp"

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>

namespace sockserv::test {

inline constexpr uid_t nobody_uid = 65534;
inline constexpr gid_t nogroup_gid = 65534;

// True when the "Groups:" line of a /proc/PID/status text lists no group (the kernel writes
// "Groups:\t \n" then).
inline bool groups_line_empty(const std::string& status) {
  const auto at = status.find("Groups:");
  if (at == std::string::npos) return false;
  const auto end = status.find('\n', at);
  return status.substr(at + 7, end - at - 7).find_first_not_of(" \t") == std::string::npos;
}

// Forks; the child clears its groups, becomes uid/gid, runs `body` and writes what it returns
// (or "error: ...") to a pipe, then _exits. Returns what the child wrote, or nullopt when it
// wrote nothing within `timeout` (the child is then killed). The parent must be single-threaded
// enough for a fork (no locks held by other threads): the tests that use it start no threads.
template <class Body>
std::optional<std::string> run_as_user(
    Body body, uid_t uid = nobody_uid, gid_t gid = nogroup_gid,
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  const pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
      out = "error: cannot become the other user";
    } else {
      try {
        out = body();
      } catch (const std::exception& e) {
        out = std::string("error: ") + e.what();
      }
    }
    [[maybe_unused]] const auto n = ::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  bool complete = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!wait_readable(fds[0], left)) break;
    char chunk[512];
    const auto n = ::read(fds[0], chunk, sizeof chunk);
    if (n <= 0) {
      complete = true;
      break;
    }
    out.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (!complete) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!complete) return std::nullopt;
  return out;
}

}  // namespace sockserv::test
