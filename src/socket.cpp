// SPDX-License-Identifier: MIT
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "sys/fd.hpp"

#include <poll.h>
#include <unistd.h>

namespace sockserv {

using Clock = std::chrono::steady_clock;

namespace {

// Runs one socket call under the socket's timeout mode:
//   1. try the call (EINTR is retried inside retry_eintr);
//   2. success: return its result;
//   3. EAGAIN on a socket with a positive timeout: wait for readiness until `deadline`, then go
//      back to 1; past the deadline: timed_out;
//   4. anything else (including EAGAIN in non-blocking mode): report it in `ec`.
template <class Call>
ssize_t io_call(int fd, short events, bool waits, Clock::time_point deadline, std::error_code& ec,
                Call call) noexcept {
  for (;;) {
    const ssize_t n = sys::retry_eintr(call);
    if (n >= 0) return n;
    if (!waits || !sys::would_block(errno)) {
      ec = sys::last_error();
      return -1;
    }
    const short ready = sys::poll_one(fd, events, deadline, ec);
    if (ec) return -1;
    if (ready == 0) {
      ec = std::make_error_code(std::errc::timed_out);
      return -1;
    }
  }
}

}  // namespace

Socket::Socket(int family, int type, int protocol)
    : fd_(::socket(family, type | SOCK_CLOEXEC, protocol)),
      family_(static_cast<std::int16_t>(family)),
      type_(base_type(type)) {
  if (fd_ < 0) throw_errno("socket");
  if (type & SOCK_NONBLOCK) timeout_ = std::chrono::nanoseconds::zero();  // as Python does
}

Socket Socket::from_fd(int fd) {
  int family = 0, type = 0;
  socklen_t len = sizeof family;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) {
    throw_errno("adopt socket", "fd " + std::to_string(fd));
  }
  len = sizeof type;
  ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  return Socket(Adopt{}, fd, family, type);
}

Socket Socket::adopt(int fd, int family, int type, bool nonblocking) noexcept {
  Socket sock(Adopt{}, fd, family, type);
  if (nonblocking) sock.timeout_ = std::chrono::nanoseconds::zero();
  return sock;
}

Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      family_(other.family_),
      type_(other.type_),
      timeout_(other.timeout_),
      deadline_(other.deadline_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    family_ = other.family_;
    type_ = other.type_;
    timeout_ = other.timeout_;
    deadline_ = other.deadline_;
  }
  return *this;
}

Socket::~Socket() { close(); }

std::string Socket::describe(std::string_view op) const {
  // Names the peer when there is one, else the local address: "recv 127.0.0.1:9999".
  std::string text(op);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  if (::getpeername(fd_, sa, &len) == 0 || (len = sizeof ss, ::getsockname(fd_, sa, &len) == 0)) {
    const Address a(sa, len);
    if (a.family() != AF_UNSPEC) return text + " " + a.to_string();
  }
  return text;
}

Clock::time_point Socket::deadline() const noexcept {
  auto until = Clock::time_point::max();
  if (timeout_.count() > 0) until = Clock::now() + timeout_;
  if (deadline_ < until) until = deadline_;
  return until;
}

void Socket::fail(std::string_view op) const {
  const auto ec = sys::last_error();  // before describe(), whose getpeername() may change errno
  throw_error(ec, describe(op));
}

bool Socket::waits() const noexcept { return getblocking() && !plain_blocking(); }

void Socket::wait_ready(short events, Clock::time_point until, std::error_code& ec) const noexcept {
  if (sys::poll_one(fd_, events, until, ec) == 0 && !ec) {
    ec = std::make_error_code(std::errc::timed_out);
  }
}

void Socket::bind(const Address& address) {
  if (::bind(fd_, address.data(), address.size()) != 0) throw_errno("bind", address.to_string());
}

void Socket::listen(int backlog) {
  // errno is saved before describe(), whose getpeername() would overwrite it.
  if (::listen(fd_, backlog) != 0) {
    const auto ec = sys::last_error();
    throw_error(ec, describe("listen"));
  }
}

std::pair<Socket, Address> Socket::accept(std::error_code& ec) noexcept {
  ec.clear();
  Address peer;
  socklen_t len = Address::capacity();
  const auto fd = io_call(fd_, POLLIN, waits(), deadline(), ec,
                          [&] { return ::accept4(fd_, peer.data(), &len, SOCK_CLOEXEC); });
  if (fd < 0) return {};
  peer.resize(len);
  return {Socket(Adopt{}, static_cast<int>(fd), family_, type_), peer};
}

std::pair<Socket, Address> Socket::accept() {
  std::error_code ec;
  auto result = accept(ec);
  if (ec) throw_error(ec, describe("accept"));
  return result;
}

int Socket::connect_ex(const Address& address) noexcept {
  // A signal during a blocking connect leaves it running in the kernel; like a timed connect, we
  // then wait for writability and read the outcome from SO_ERROR.
  if (::connect(fd_, address.data(), address.size()) == 0) return 0;
  if (errno != EINPROGRESS && errno != EINTR) return errno;
  if (errno == EINPROGRESS && !waits() && has_timeout()) return EINPROGRESS;  // non-blocking mode
  std::error_code ec;
  wait_ready(POLLOUT, deadline(), ec);
  if (ec) return ec.value();
  const auto pending = get_error();
  return pending.value();
}

void Socket::connect(const Address& address) {
  // With a timeout the descriptor is non-blocking (see settimeout), so connect_ex() waits at
  // most the timeout for the handshake.
  if (const int err = connect_ex(address)) {
    throw_error({err, std::generic_category()}, "connect", address.to_string());
  }
}

std::size_t Socket::send(std::string_view data, std::error_code& ec, int flags) noexcept {
  ec.clear();
  const auto n = io_call(fd_, POLLOUT, waits(), deadline(), ec, [&] {
    return ::send(fd_, data.data(), data.size(), flags | MSG_NOSIGNAL);
  });
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

std::size_t Socket::send(std::string_view data, int flags) {
  std::error_code ec;
  const auto n = send(data, ec, flags);
  if (ec) throw_error(ec, describe("send"));
  return n;
}

void Socket::sendall(std::string_view data, int flags) {
  // The HOWTO's send loop: send() may take only part of the data, so keep offering the rest.
  // The waiting case lives in its own function, so this one stays a bare loop around send().
  if (!plain_blocking()) return sendall_waiting(data, flags);
  while (!data.empty()) {
    const auto n = sys::retry_eintr(
        [&] { return ::send(fd_, data.data(), data.size(), flags | MSG_NOSIGNAL); });
    if (n < 0) fail("sendall");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Socket::sendall_waiting(std::string_view data, int flags) {
  // One deadline covers the whole call, so a peer that reads one byte a second cannot keep us
  // here forever.
  const auto until = deadline();
  while (!data.empty()) {
    std::error_code ec;
    const auto n = io_call(fd_, POLLOUT, waits(), until, ec, [&] {
      return ::send(fd_, data.data(), data.size(), flags | MSG_NOSIGNAL);
    });
    if (ec) throw_error(ec, describe("sendall"));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::size_t Socket::recv_into(std::span<char> buffer, std::error_code& ec, int flags) noexcept {
  ec.clear();
  const auto n = io_call(fd_, POLLIN, waits(), deadline(), ec,
                         [&] { return ::recv(fd_, buffer.data(), buffer.size(), flags); });
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

std::size_t Socket::recv_into(std::span<char> buffer, int flags) {
  if (!plain_blocking()) return recv_into_waiting(buffer, flags);
  const auto n = sys::retry_eintr([&] { return ::recv(fd_, buffer.data(), buffer.size(), flags); });
  if (n < 0) fail("recv");
  return static_cast<std::size_t>(n);
}

std::size_t Socket::recv_into_waiting(std::span<char> buffer, int flags) {
  std::error_code ec;
  const auto n = recv_into(buffer, ec, flags);
  if (ec) throw_error(ec, describe("recv"));
  return n;
}

std::size_t Socket::recv_into_until(std::span<char> buffer, Clock::time_point until) {
  std::error_code ec;
  const auto own = deadline();
  const auto n = io_call(fd_, POLLIN, getblocking(), std::min(own, until), ec,
                         // MSG_DONTWAIT: the wait happens in poll(), where the deadline
                         // applies, even when the descriptor itself is blocking.
                         [&] { return ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT); });
  if (ec) throw_error(ec, describe("recv"));
  return static_cast<std::size_t>(n);
}

std::string Socket::recv(std::size_t bufsize, int flags) {
  std::string out(bufsize, '\0');
  out.resize(recv_into(out, flags));
  return out;
}

std::string Socket::recv_exact(std::size_t n) {
  // The HOWTO's receive loop: recv() returns what has arrived so far, so call it until the whole
  // message is here. recv() returning 0 before that means the peer closed mid-message.
  std::string out(n, '\0');
  std::size_t got = 0;
  const auto until = deadline();
  while (got < n) {
    std::error_code ec;
    const auto r = io_call(fd_, POLLIN, waits(), until, ec,
                           [&] { return ::recv(fd_, out.data() + got, n - got, 0); });
    if (ec) throw_error(ec, describe("recv_exact"));
    if (r == 0) {
      throw_error(errc::connection_broken, describe("recv_exact"),
                  "(got " + std::to_string(got) + " of " + std::to_string(n) + " bytes)");
    }
    got += static_cast<std::size_t>(r);
  }
  return out;
}

RecvFromResult Socket::recvfrom_into(std::span<char> buffer, std::error_code& ec,
                                     int flags) noexcept {
  ec.clear();
  RecvFromResult result;
  socklen_t len = Address::capacity();
  // MSG_TRUNC makes recvfrom return the datagram's real length, so truncation is visible. Not
  // on a stream socket: there TCP takes MSG_TRUNC as "discard the data".
  const int trunc = type_ == SOCK_STREAM ? 0 : MSG_TRUNC;
  const auto n = io_call(fd_, POLLIN, waits(), deadline(), ec, [&] {
    len = Address::capacity();
    return ::recvfrom(fd_, buffer.data(), buffer.size(), flags | trunc, result.address.data(),
                      &len);
  });
  if (n < 0) return result;
  result.address.resize(len);
  result.truncated = static_cast<std::size_t>(n) > buffer.size();
  result.size = result.truncated ? buffer.size() : static_cast<std::size_t>(n);
  return result;
}

RecvFromResult Socket::recvfrom_into(std::span<char> buffer, int flags) {
  std::error_code ec;
  auto result = recvfrom_into(buffer, ec, flags);
  if (ec) throw_error(ec, describe("recvfrom"));
  return result;
}

std::pair<std::string, Address> Socket::recvfrom(std::size_t bufsize, int flags) {
  std::string data(bufsize, '\0');
  auto result = recvfrom_into(data, flags);
  if (result.truncated) {
    throw_error(
        errc::datagram_truncated, describe("recvfrom"),
        "from " + result.address.to_string() + " (buffer " + std::to_string(bufsize) + " bytes)");
  }
  data.resize(result.size);
  return {std::move(data), result.address};
}

std::size_t Socket::sendto(std::string_view data, const Address& address, int flags) {
  std::error_code ec;
  const auto n = io_call(fd_, POLLOUT, waits(), deadline(), ec, [&] {
    return ::sendto(fd_, data.data(), data.size(), flags | MSG_NOSIGNAL, address.data(),
                    address.size());
  });
  if (ec) throw_error(ec, "sendto", address.to_string());
  return static_cast<std::size_t>(n);
}

void Socket::shutdown(int how) {
  if (::shutdown(fd_, how) != 0) {
    const auto ec = sys::last_error();  // before describe() overwrites errno
    throw_error(ec, describe("shutdown"));
  }
}

void Socket::close() noexcept {
  // Never retried on EINTR: Linux has released the descriptor even then, and a retry could close
  // a descriptor another thread has just been given.
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

bool Socket::graceful_close(std::chrono::nanoseconds drain_timeout) noexcept {
  if (fd_ < 0) return false;
  bool peer_closed = false;
  if (::shutdown(fd_, SHUT_WR) == 0) {
    const auto until = Clock::now() + drain_timeout;
    char sink[4096];
    for (;;) {
      std::error_code ec;
      if (sys::poll_one(fd_, POLLIN, until, ec) == 0) break;  // deadline or error
      const auto n = sys::retry_eintr([&] { return ::recv(fd_, sink, sizeof sink, MSG_DONTWAIT); });
      if (n == 0) {
        peer_closed = true;
        break;
      }
      if (n < 0 && !sys::would_block(errno)) break;
    }
  }
  close();
  return peer_closed;
}

void Socket::setblocking(bool blocking) {
  settimeout(blocking ? Timeout{} : Timeout{std::chrono::nanoseconds::zero()});
}

void Socket::settimeout(Timeout timeout) {
  if (timeout && timeout->count() < 0) throw std::invalid_argument("settimeout: negative timeout");
  // Like Python: any timeout (zero or positive) makes the descriptor non-blocking, and blocking
  // waits are done in poll() where a deadline can end them.
  if (const auto ec = sys::set_nonblocking(fd_, timeout.has_value() || has_deadline())) {
    throw_error(ec, describe("settimeout"));
  }
  timeout_ = timeout.value_or(std::chrono::nanoseconds(-1));
}

void Socket::set_deadline(std::optional<Clock::time_point> deadline) {
  if (deadline == Clock::time_point::max()) deadline.reset();
  const bool was_nonblocking = has_timeout() || has_deadline();
  const bool nonblocking = has_timeout() || deadline.has_value();
  if (nonblocking != was_nonblocking) {  // no syscall when the mode stays (the common case)
    if (const auto ec = sys::set_nonblocking(fd_, nonblocking)) {
      throw_error(ec, describe("set_deadline"));
    }
  }
  deadline_ = deadline.value_or(Clock::time_point::max());
}

Address Socket::getsockname() const {
  Address a;
  socklen_t len = Address::capacity();
  if (::getsockname(fd_, a.data(), &len) != 0) throw_errno("getsockname");
  a.resize(len);
  return a;
}

Address Socket::getpeername() const {
  Address a;
  socklen_t len = Address::capacity();
  if (::getpeername(fd_, a.data(), &len) != 0) throw_errno("getpeername");
  a.resize(len);
  return a;
}

}  // namespace sockserv
