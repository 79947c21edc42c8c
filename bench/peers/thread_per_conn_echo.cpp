// SPDX-License-Identifier: MIT
// Echo server with plain blocking sockets and a std::thread per connection, for bench/compare.py:
// the baseline that sockserv's threading mode is held to. Each thread receives into a 16 KiB
// buffer on its stack and sends it all back.
//
//   thread_per_conn_echo [PORT]   0 or nothing: the kernel picks; prints "listening on ..."
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <thread>

namespace {

void serve(int fd) {
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t sent =
          ::send(fd, buffer + done, static_cast<std::size_t>(n - done), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0) {
        ::close(fd);
        return;
      }
      done += sent;
    }
  }
  ::close(fd);
}

int listen_on(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    std::perror("thread_per_conn_echo: listen");
    std::exit(1);
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(ntohs(addr.sin_port)));
  std::fflush(stdout);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  const int listener = listen_on(static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0));
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != ECONNABORTED) {
        std::perror("thread_per_conn_echo: accept");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // EMFILE: let threads end
      }
      continue;
    }
    try {
      std::thread(serve, fd).detach();
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "thread_per_conn_echo: %s\n", e.what());
      ::close(fd);
    }
  }
}
