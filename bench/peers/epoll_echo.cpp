// SPDX-License-Identifier: MIT
// The ceiling of bench/compare.py: a minimal single-threaded epoll echo loop, written by hand.
//
//   - Level-triggered. One 64 KiB read buffer serves every connection: a read is sent straight
//     back, so an idle connection owns nothing but its 40-byte record.
//   - What send() does not take is kept in the connection's `pending` bytes; the connection then
//     waits for EPOLLOUT and stops reading until they are out (a slow reader cannot make the
//     server buffer more than one read).
//   - Per message: one recv() and one send(), and an epoll_wait() shared by every connection
//     that was ready at the same time. Nothing else.
//
//   epoll_echo [PORT]   0 or nothing: the kernel picks; prints "listening on 127.0.0.1:PORT"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct Conn {
  int fd;
  std::string pending;  // echoed bytes the socket has not taken yet
};

int epfd;
char buffer[65536];

void watch(Conn* c, int op, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = c;
  ::epoll_ctl(epfd, op, c->fd, &ev);
}

void drop(Conn* c) {
  ::close(c->fd);  // also leaves the epoll set
  delete c;
}

// A send() that may take only part of `n` bytes; -1 when the connection has failed.
ssize_t send_some(Conn* c, const char* data, std::size_t n) {
  const ssize_t sent = ::send(c->fd, data, n, MSG_NOSIGNAL);
  if (sent < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  return sent;
}

// Readable: echo one read. What the socket refuses waits in `pending` for EPOLLOUT.
void on_readable(Conn* c) {
  const ssize_t n = ::recv(c->fd, buffer, sizeof buffer, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  const ssize_t sent = n > 0 ? send_some(c, buffer, static_cast<std::size_t>(n)) : -1;
  if (sent < 0) return drop(c);
  if (sent < n) {
    c->pending.assign(buffer + sent, static_cast<std::size_t>(n - sent));
    watch(c, EPOLL_CTL_MOD, EPOLLOUT);
  }
}

// Writable while bytes are pending: send more; once they are all out, read again.
void on_writable(Conn* c) {
  const ssize_t sent = send_some(c, c->pending.data(), c->pending.size());
  if (sent < 0) return drop(c);
  c->pending.erase(0, static_cast<std::size_t>(sent));
  if (c->pending.empty()) {
    std::string().swap(c->pending);  // give the memory back
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
  }
}

void accept_all(int listener) {
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) std::perror("epoll_echo: accept");
      return;
    }
    watch(new Conn{fd, {}}, EPOLL_CTL_ADD, EPOLLIN);
  }
}

int listen_on(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    std::perror("epoll_echo: listen");
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
  epfd = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listener
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
  epoll_event events[256];
  for (;;) {
    const int n = ::epoll_wait(epfd, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      if (auto* c = static_cast<Conn*>(events[i].data.ptr)) {
        c->pending.empty() ? on_readable(c) : on_writable(c);
      } else {
        accept_all(listener);
      }
    }
  }
}
