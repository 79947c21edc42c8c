// SPDX-License-Identifier: MIT
#include "sys/fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace sockserv::sys {

short poll_one(int fd, short events, std::chrono::steady_clock::time_point deadline,
               std::error_code& ec) noexcept {
  using namespace std::chrono;
  for (;;) {
    int wait_ms = -1;
    if (deadline != steady_clock::time_point::max()) {
      const auto left = ceil<milliseconds>(deadline - steady_clock::now()).count();
      wait_ms = left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, wait_ms);
    if (n > 0) return p.revents;
    if (n == 0) {
      if (wait_ms != 0 && steady_clock::now() < deadline) continue;  // woke early: wait on
      return 0;
    }
    if (errno == EINTR) continue;
    ec = last_error();
    return 0;
  }
}

std::error_code set_nonblocking(int fd, bool on) noexcept {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return last_error();
  const int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) < 0) return last_error();
  return {};
}

bool remove_stale_unix_socket(const char* path, int type) noexcept {
  struct stat st {};
  if (::lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  // A connect that is refused means nobody listens: the file is stale and safe to remove. The
  // probe is non-blocking so a live server with a full backlog (EAGAIN) cannot stall us, and of
  // the server's own type (a stream probe of a datagram socket fails with EPROTOTYPE instead).
  const int probe = ::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return false;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
  const int rc =
      retry_eintr([&] { return ::connect(probe, reinterpret_cast<sockaddr*>(&sun), sizeof sun); });
  const bool stale = rc != 0 && errno == ECONNREFUSED;
  ::close(probe);
  return stale && ::unlink(path) == 0;
}

}  // namespace sockserv::sys
