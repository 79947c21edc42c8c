// SPDX-License-Identifier: MIT
// send_fds / recv_fds: sendmsg(2) and recvmsg(2) with SCM_RIGHTS control messages.
#include <sockserv/error.hpp>
#include <sockserv/fd_passing.hpp>

#include "sys/fd.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace sockserv {

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

int FileDescriptor::release() noexcept {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void FileDescriptor::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace {

using Clock = std::chrono::steady_clock;

void require_plain(const Socket& sock, const char* op) {
  if (sock.layer()) {
    throw std::invalid_argument(std::string(op) +
                                ": a socket with a stream layer (TLS) cannot "
                                "carry descriptors");
  }
}

// Runs one sendmsg/recvmsg under the socket's mode: blocking without a limit, the bare call;
// non-blocking, one MSG_DONTWAIT attempt; with a timeout or a deadline, MSG_DONTWAIT attempts
// with a poll() for `events` between them, until the earlier of the two.
template <class Call>
ssize_t call_in_mode(const Socket& sock, short events, int& flags, Call call, std::error_code& ec) {
  const auto timeout = sock.gettimeout();
  const auto deadline = sock.get_deadline();
  if (!timeout && !deadline) return sys::retry_eintr(call);
  flags |= MSG_DONTWAIT;
  auto until = deadline.value_or(Clock::time_point::max());
  if (timeout && timeout->count() > 0) until = std::min(until, Clock::now() + *timeout);
  for (;;) {
    const ssize_t n = sys::retry_eintr(call);
    if (n >= 0 || !sys::would_block(errno) || (timeout && timeout->count() == 0)) return n;
    // Waits for readiness; a deadline that passes is reported as a timeout.
    if (sys::poll_one(sock.fileno(), events, until, ec) == 0) {
      if (!ec) ec = std::make_error_code(std::errc::timed_out);
      return -1;
    }
    if (ec) return -1;
  }
}

[[noreturn]] void fail(std::error_code ec, const char* op, const Socket& sock) {
  std::string where;
  try {
    where = sock.getsockname().to_string();
  } catch (const std::exception&) {
  }
  throw_error(ec, op, where);
}

}  // namespace

std::size_t send_fds(Socket& sock, std::span<const std::string_view> buffers,
                     std::span<const int> fds, int flags, const std::optional<Address>& address) {
  require_plain(sock, "send_fds");
  if (!fds.empty() && sock.family() != AF_UNIX) {
    // TCP would ignore the control message and send the bytes alone.
    throw std::invalid_argument("send_fds: descriptors travel over Unix sockets only");
  }
  std::vector<iovec> iov;
  iov.reserve(buffers.size());
  for (const auto& b : buffers) iov.push_back({const_cast<char*>(b.data()), b.size()});
  // The control buffer is cmsghdr-typed so it has the alignment CMSG_* expect.
  const std::size_t space = fds.empty() ? 0 : CMSG_SPACE(fds.size_bytes());
  std::vector<cmsghdr> control((space + sizeof(cmsghdr) - 1) / sizeof(cmsghdr));
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  if (address) {
    msg.msg_name = const_cast<sockaddr*>(address->data());
    msg.msg_namelen = address->size();
  }
  if (space != 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = space;
    cmsghdr* header = CMSG_FIRSTHDR(&msg);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(fds.size_bytes());
    std::memcpy(CMSG_DATA(header), fds.data(), fds.size_bytes());
  }
  flags |= MSG_NOSIGNAL;
  std::error_code ec;
  const ssize_t n = call_in_mode(
      sock, POLLOUT, flags, [&] { return ::sendmsg(sock.fileno(), &msg, flags); }, ec);
  if (n < 0) fail(ec ? ec : sys::last_error(), "send_fds", sock);
  return static_cast<std::size_t>(n);
}

RecvFdsResult recv_fds(Socket& sock, std::size_t bufsize, std::size_t maxfds, int flags) {
  require_plain(sock, "recv_fds");
  RecvFdsResult result;
  result.data.resize(bufsize);
  iovec iov{result.data.data(), bufsize};
  const std::size_t space = maxfds == 0 ? 0 : CMSG_SPACE(maxfds * sizeof(int));
  std::vector<cmsghdr> control((space + sizeof(cmsghdr) - 1) / sizeof(cmsghdr));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_name = result.address.data();
  msg.msg_namelen = Address::capacity();
  msg.msg_control = space == 0 ? nullptr : control.data();
  msg.msg_controllen = space;
  // Close-on-exec from the moment the kernel installs them: no window for a fork+exec elsewhere.
  flags |= MSG_CMSG_CLOEXEC;
  std::error_code ec;
  const ssize_t n = call_in_mode(
      sock, POLLIN, flags, [&] { return ::recvmsg(sock.fileno(), &msg, flags); }, ec);
  if (n < 0) fail(ec ? ec : sys::last_error(), "recv_fds", sock);
  // Every descriptor the kernel installed is owned before anything else can throw.
  for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h != nullptr; h = CMSG_NXTHDR(&msg, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
      result.fds.emplace_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    // The kernel installed what fit and dropped the rest: a partial set is of no use to the
    // caller, and handing it on would invite a leak. result's destructor closes them.
    throw_error(errc::control_truncated, "recv_fds",
                "more than maxfds=" + std::to_string(maxfds) + " descriptors");
  }
  result.data.resize(static_cast<std::size_t>(n));
  result.msg_flags = msg.msg_flags & ~MSG_CMSG_CLOEXEC;  // ours, not news from the kernel
  if (msg.msg_namelen == 0) {
    result.address = Address();  // a connected stream: no sender address (Python: None)
  } else {
    result.address.resize(msg.msg_namelen);
  }
  return result;
}

}  // namespace sockserv
