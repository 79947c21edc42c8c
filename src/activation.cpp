// SPDX-License-Identifier: MIT
#include <sockserv/activation.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <string_view>

namespace sockserv {
namespace {

constexpr int first_listen_fd = 3;  // SD_LISTEN_FDS_START

std::optional<long> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (!text) return std::nullopt;
  long value = 0;
  const std::string_view view(text);
  const auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (ec != std::errc() || end != view.data() + view.size()) return std::nullopt;
  return value;
}

bool is_listening_socket(int fd) {
  int listening = 0;
  socklen_t len = sizeof listening;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening;
}

}  // namespace

std::vector<Socket> listen_fds(bool unset_environment) {
  std::vector<Socket> sockets;
  const auto pid = env_number("LISTEN_PID");
  const auto count = env_number("LISTEN_FDS");
  if (unset_environment) {
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
  }
  if (!pid || !count || *pid != ::getpid() || *count <= 0) return sockets;
  for (int fd = first_listen_fd; fd < first_listen_fd + *count; ++fd) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    sockets.push_back(Socket::from_fd(fd));
  }
  return sockets;
}

std::optional<Socket> inetd_socket() {
  if (!is_listening_socket(STDIN_FILENO)) return std::nullopt;
  // Keep fd 0 occupied (by /dev/null) so later opens do not land on it by accident.
  const int copy = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return std::nullopt;
  const int null = ::open("/dev/null", O_RDONLY);
  if (null >= 0 && null != STDIN_FILENO) {
    ::dup2(null, STDIN_FILENO);
    ::close(null);
  }
  return Socket::from_fd(copy);
}

}  // namespace sockserv
