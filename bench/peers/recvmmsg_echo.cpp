// SPDX-License-Identifier: MIT
// The UDP ceiling for bench/compare.py --udp: a hand-written echo loop on one socket, as short as
// it gets. A blocking recvmmsg with MSG_WAITFORONE sleeps until one datagram is there, then takes
// what else is queued (up to 32) in the same call; every datagram is echoed with one sendmmsg.
// One syscall per batch in, one out, no readiness API, no allocation.
//
//   recvmmsg_echo [PORT [RCVBUF]]   PORT 0 or nothing: the kernel picks; RCVBUF: SO_RCVBUF to
//                                   ask for (default: the system's). Prints
//                                   "listening on 127.0.0.1:PORT".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr unsigned batch = 32;
constexpr unsigned max_datagram = 65507;

char buffers[batch][max_datagram];
sockaddr_in6 peers[batch];
iovec iov[batch];
mmsghdr msgs[batch];

}  // namespace

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 0;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::perror("socket"), 1;
  if (argc > 2) {
    const int rcvbuf = std::atoi(argv[2]);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return std::perror("bind"), 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  for (unsigned i = 0; i < batch; ++i) iov[i] = {buffers[i], max_datagram};
  for (;;) {
    for (unsigned i = 0; i < batch; ++i) {
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &peers[i];
      msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(fd, msgs, batch, MSG_WAITFORONE, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::perror("recvmmsg"), 1;
    }
    // The same headers send: each iovec is cut to the datagram's length, the name is the sender.
    for (int i = 0; i < n; ++i) iov[i].iov_len = msgs[i].msg_len;
    for (int sent = 0; sent < n;) {
      const int m = ::sendmmsg(fd, msgs + sent, static_cast<unsigned>(n - sent), 0);
      if (m < 0) {
        if (errno == EINTR) continue;
        break;  // drop the rest of the batch, as the network may
      }
      sent += m;
    }
    for (int i = 0; i < n; ++i) iov[i].iov_len = max_datagram;
  }
}
