// SPDX-License-Identifier: MIT
#include <sockserv/detail/stream_layer.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "sys/fd.hpp"
#include "sys/kernel_timer.hpp"

#include <poll.h>
#include <unistd.h>

#include <stdexcept>

namespace sockserv {

using Clock = std::chrono::steady_clock;

// Runs one socket call under the socket's timeout mode (EINTR is retried in every mode):
//   none    the call once; on a blocking descriptor the kernel waits without limit;
//   poll    the call; on EAGAIN, wait for readiness in poll() until `deadline`, then again
//           (a stream layer's descriptor is non-blocking);
//   kernel  the call on the blocking descriptor, under a kernel timer for the time left (set
//           only when it must change: the common call is the bare syscall). EAGAIN means the
//           timer ran out: past the deadline that is timed_out; before it (a timer shorter than
//           the time left), arm again and call again.
// Anything else, or EAGAIN in non-blocking mode, is reported in `ec`.
template <class Call>
ssize_t Socket::io_call(int fd, short events, Wait how, Clock::time_point deadline,
                        std::uint32_t& timer, std::error_code& ec, Call call) noexcept {
  bool woke_early = false;
  for (;;) {
    if (how == Wait::kernel) {
      auto left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) {
        // Past the deadline a call that need not wait still succeeds (as with poll()): one
        // try under the shortest timer.
        if (woke_early) {
          ec = std::make_error_code(std::errc::timed_out);
          return -1;
        }
        left = std::chrono::nanoseconds(1);
      }
      const int option = events == POLLOUT ? SO_SNDTIMEO : SO_RCVTIMEO;
      if (!sys::arm_kernel_timer(fd, option, left, timer, woke_early, ec)) return -1;
    }
    const ssize_t n = call();
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (how == Wait::none || !sys::would_block(errno)) {
      ec = sys::last_error();
      return -1;
    }
    if (how == Wait::kernel) {
      woke_early = true;
      continue;
    }
    const short ready = sys::poll_one(fd, events, deadline, ec);
    if (ec) return -1;
    if (ready == 0) {
      ec = std::make_error_code(std::errc::timed_out);
      return -1;
    }
  }
}

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
      deadline_(other.deadline_),
      layer_(std::move(other.layer_)),
      recv_timer_us_(other.recv_timer_us_),
      send_timer_us_(other.send_timer_us_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    family_ = other.family_;
    type_ = other.type_;
    timeout_ = other.timeout_;
    deadline_ = other.deadline_;
    layer_ = std::move(other.layer_);
    recv_timer_us_ = other.recv_timer_us_;
    send_timer_us_ = other.send_timer_us_;
  }
  return *this;
}

int Socket::detach() noexcept {
  layer_.reset();
  return std::exchange(fd_, -1);
}

void Socket::set_layer(std::unique_ptr<detail::StreamLayer> layer) noexcept {
  const bool was_nonblocking = nonblocking_fd();
  layer_ = std::move(layer);
  (void)sync_mode(was_nonblocking);  // fcntl on a descriptor we own does not fail
}

std::unique_ptr<detail::StreamLayer> Socket::release_layer() noexcept {
  const bool was_nonblocking = nonblocking_fd();
  auto layer = std::move(layer_);
  (void)sync_mode(was_nonblocking);
  return layer;
}

std::error_code Socket::sync_mode(bool was_nonblocking) noexcept {
  if (fd_ < 0) return {};
  std::error_code ec;
  if (nonblocking_fd() != was_nonblocking) ec = sys::set_nonblocking(fd_, nonblocking_fd());
  if (!ec && plain_blocking()) ec = sys::clear_kernel_timer(fd_, SO_RCVTIMEO, recv_timer_us_);
  if (!ec && plain_blocking()) ec = sys::clear_kernel_timer(fd_, SO_SNDTIMEO, send_timer_us_);
  return ec;
}

ssize_t Socket::transfer(Direction direction, std::span<char> in, std::string_view out, int flags,
                         Wait how, Clock::time_point until, std::error_code& ec) noexcept {
  ec.clear();
  const bool sending = direction == Direction::send;
  if (!layer_) {
    if (how == Wait::kernel && (flags & MSG_DONTWAIT) != 0) how = Wait::none;
    for (;;) {
      const auto n =
          io_call(fd_, sending ? POLLOUT : POLLIN, how, until, kernel_timer(sending), ec, [&] {
            return sending ? ::send(fd_, out.data(), out.size(), flags | MSG_NOSIGNAL)
                           : ::recv(fd_, in.data(), in.size(), flags);
          });
      if (n >= 0 || sending || !drop_idle_timer(flags, ec.value())) return n;
      ec.clear();
    }
  }
  // A layer has no MSG_PEEK, MSG_OOB, ...: refused rather than silently ignored (Python raises
  // ValueError). MSG_DONTWAIT and MSG_NOSIGNAL are what the layer does anyway.
  if ((flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL)) != 0) {
    ec = std::make_error_code(std::errc::operation_not_supported);
    return -1;
  }
  // The layer's loop: the same as io_call's, but the layer says which readiness it needs (a TLS
  // read may have to write first, and a write to read).
  for (;;) {
    short want = 0;
    const ssize_t n = sending ? layer_->write_some(out, want, ec) : layer_->read_some(in, want, ec);
    if (n >= 0 || ec) return n;
    if (how == Wait::none) {
      ec = std::make_error_code(std::errc::resource_unavailable_try_again);
      return -1;
    }
    wait_ready(want, until, ec);
    if (ec) return -1;
  }
}

void Socket::drive_layer(std::string_view op, LayerStep step) {
  if (!layer_) throw std::logic_error(std::string(op) + ": the socket has no stream layer (TLS)");
  const auto until = deadline();
  std::error_code ec;
  for (;;) {
    short want = 0;
    if (step(*layer_, want, ec) >= 0) return;
    if (!ec && !waits()) ec = std::make_error_code(std::errc::resource_unavailable_try_again);
    if (!ec) wait_ready(want, until, ec);
    if (ec) fail_transfer(ec, op);
  }
}

void Socket::fail_transfer(std::error_code ec, std::string_view op) const {
  const auto what = describe(op);
  if (layer_ && ec.category() == ssl_category()) {
    throw_error(ec, what, "(" + layer_->error_detail() + ")");
  }
  throw_error(ec, what);
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
  const auto fd = io_call(fd_, POLLIN, wait_mode(), deadline(), recv_timer_us_, ec,
                          [&] { return ::accept4(fd_, peer.data(), &len, SOCK_CLOEXEC); });
  if (fd < 0) return {};
  peer.resize(len);
  Socket child(Adopt{}, static_cast<int>(fd), family_, type_);
  // An accepted socket inherits the listener's SO_RCVTIMEO/SO_SNDTIMEO; it starts without a
  // timeout, so they go (only when this listener waited under them).
  child.recv_timer_us_ = recv_timer_us_;
  child.send_timer_us_ = send_timer_us_;
  if ((ec = child.sync_mode(false))) return {};
  return {std::move(child), peer};
}

std::pair<Socket, Address> Socket::accept() {
  std::error_code ec;
  auto result = accept(ec);
  if (ec) throw_error(ec, describe("accept"));
  return result;
}

int Socket::connect_ex(const Address& address) noexcept {
  // A timed connect waits in poll(), not under SO_SNDTIMEO (which leaves a connect that timed
  // out running, reporting EINPROGRESS): the descriptor is non-blocking for its duration.
  if (wait_mode() == Wait::kernel) {
    if (const auto ec = sys::set_nonblocking(fd_, true)) return ec.value();
    const int result = connect_polled(address);
    (void)sys::set_nonblocking(fd_, false);
    return result;
  }
  return connect_polled(address);
}

int Socket::connect_polled(const Address& address) noexcept {
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
  const auto n = transfer(Direction::send, {}, data, flags, wait_mode(), deadline(), ec);
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

std::size_t Socket::send(std::string_view data, int flags) {
  std::error_code ec;
  const auto n = send(data, ec, flags);
  if (ec) fail_transfer(ec, "send");
  return n;
}

void Socket::sendall(std::string_view data, int flags) {
  // The HOWTO's send loop: send() may take only part of the data, so keep offering the rest.
  // The waiting and layered cases live in their own function, so this one stays a bare loop
  // around send().
  if (!bare()) return sendall_waiting(data, flags);
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
    const auto n = transfer(Direction::send, {}, data, flags, wait_mode(), until, ec);
    if (ec) fail_transfer(ec, "sendall");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::size_t Socket::recv_into(std::span<char> buffer, std::error_code& ec, int flags) noexcept {
  const auto n = transfer(Direction::receive, buffer, {}, flags, wait_mode(), deadline(), ec);
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

std::size_t Socket::recv_into(std::span<char> buffer, int flags) {
  if (!bare()) return recv_into_waiting(buffer, flags);
  for (;;) {
    const auto n =
        sys::retry_eintr([&] { return ::recv(fd_, buffer.data(), buffer.size(), flags); });
    if (n >= 0) return static_cast<std::size_t>(n);
    if (!drop_idle_timer(flags, errno)) fail("recv");
  }
}

bool Socket::drop_idle_timer(int flags, int err) noexcept {
  // Only an idle wait leaves a receive timer on a bare socket (recv_into_idle), so on a call
  // that blocks without limit EAGAIN is that timer running out, not an answer for this call.
  if (recv_timer_us_ == 0 || !bare() || (flags & MSG_DONTWAIT) != 0) return false;
  if (err != EAGAIN && err != EWOULDBLOCK) return false;
  return !sys::clear_kernel_timer(fd_, SO_RCVTIMEO, recv_timer_us_);
}

std::size_t Socket::recv_into_waiting(std::span<char> buffer, int flags) {
  std::error_code ec;
  const auto n = recv_into(buffer, ec, flags);
  if (ec) fail_transfer(ec, "recv");
  return n;
}

std::size_t Socket::recv_into_until(std::span<char> buffer, Clock::time_point until) {
  std::error_code ec;
  until = std::min(deadline(), until);
  auto how = wait_mode();
  if (how == Wait::none && getblocking()) {
    // Blocking without a limit of its own: the call's deadline is waited for in poll(), so no
    // kernel timer is left behind on a socket whose bare calls must never time out.
    how = Wait::poll;
    // A layer reads the descriptor as it is (blocking): wait for input first, so a partial
    // TLS record is the only thing that can still block.
    if (layer_ && layer_->pending() == 0) wait_ready(POLLIN, until, ec);
  }
  const int flags = how == Wait::poll && !layer_ ? MSG_DONTWAIT : 0;
  const auto n = ec ? -1 : transfer(Direction::receive, buffer, {}, flags, how, until, ec);
  if (ec) fail_transfer(ec, "recv");
  return static_cast<std::size_t>(n);
}

std::size_t Socket::recv_into_idle(std::span<char> buffer, Timeout idle) {
  if (!getblocking()) return recv_into(buffer);
  auto until = deadline_;
  const auto now = Clock::now();
  if (idle && *idle < until - now) until = now + std::max(*idle, std::chrono::nanoseconds(0));
  // A timed socket waits under its kernel timer (or in poll() under a layer) as any call, only
  // for longer: the timer installed for the socket's timeout is shorter, so it wakes the call
  // early, io_call sees time left and installs the longer one. That costs a setsockopt only on
  // a wait that outlasts the socket's timeout, i.e. on a connection that really was idle.
  if (!plain_blocking()) {
    std::error_code ec;
    const auto n = transfer(Direction::receive, buffer, {}, 0, wait_mode(), until, ec);
    if (ec) fail_transfer(ec, "recv");
    return static_cast<std::size_t>(n);
  }
  if (until == Clock::time_point::max()) return recv_into(buffer);
  if (layer_) return recv_into_until(buffer, until);
  // Bare: the wait runs under a kernel timer for the idle timeout, installed by the first idle
  // wait and kept for the next ones, so an idle wait is the one recv(2) a bare call is (before,
  // a wait in poll() cost recv EAGAIN, poll, recv: 1.3x the CPU per message at depth 1). The
  // timer stays on the descriptor; a later bare receive that meets it removes it and calls again
  // (drop_idle_timer), so bare calls still wait without limit.
  std::error_code ec;
  const auto n = transfer(Direction::receive, buffer, {}, 0, Wait::kernel, until, ec);
  if (ec) fail_transfer(ec, "recv");
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
    const auto r =
        transfer(Direction::receive, {out.data() + got, n - got}, {}, 0, wait_mode(), until, ec);
    if (ec) fail_transfer(ec, "recv_exact");
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
  const auto how = (flags & MSG_DONTWAIT) != 0 ? Wait::none : wait_mode();
  ssize_t n = -1;
  do {
    ec.clear();
    n = io_call(fd_, POLLIN, how, deadline(), recv_timer_us_, ec, [&] {
      len = Address::capacity();
      return ::recvfrom(fd_, buffer.data(), buffer.size(), flags | trunc, result.address.data(),
                        &len);
    });
  } while (n < 0 && drop_idle_timer(flags, ec.value()));
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
  const auto how = (flags & MSG_DONTWAIT) != 0 ? Wait::none : wait_mode();
  const auto n = io_call(fd_, POLLOUT, how, deadline(), send_timer_us_, ec, [&] {
    return ::sendto(fd_, data.data(), data.size(), flags | MSG_NOSIGNAL, address.data(),
                    address.size());
  });
  if (ec) throw_error(ec, "sendto", address.to_string());
  return static_cast<std::size_t>(n);
}

void Socket::shutdown(int how) {
  // A layer says goodbye first (TLS: close_notify, which Python's SSLSocket.shutdown() never
  // sends), within the socket's timeout; a peer that is gone already is not an error here.
  if (layer_ && how != SHUT_RD) close_layer(deadline(), waits());
  if (::shutdown(fd_, how) != 0) {
    const auto ec = sys::last_error();  // before describe() overwrites errno
    throw_error(ec, describe("shutdown"));
  }
}

void Socket::close() noexcept {
  layer_.reset();
  // Never retried on EINTR: Linux has released the descriptor even then, and a retry could close
  // a descriptor another thread has just been given.
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void Socket::close_layer(Clock::time_point until, bool may_wait) noexcept {
  std::error_code ec;
  short want = 0;
  while (layer_->close_some(want, ec) < 0 && !ec && may_wait) wait_ready(want, until, ec);
}

bool Socket::graceful_close_layer(Clock::time_point until) noexcept {
  // The layer's own goodbye first (TLS: close_notify), then the HOWTO's: FIN, and read what the
  // peer still sends (its close_notify, then its FIN) until it closes or the deadline passes.
  // Non-blocking from here on, so a partial record cannot hold us past the deadline.
  (void)sys::set_nonblocking(fd_, true);
  close_layer(until, true);
  ::shutdown(fd_, SHUT_WR);
  std::error_code ec;
  char sink[4096];
  for (;;) {
    short want = 0;
    const auto n = layer_->read_some(sink, want, ec);
    if (n == 0 || ec) return n == 0 || ec == ssl_errc::unexpected_eof;
    if (n > 0) continue;
    wait_ready(want, until, ec);
    if (ec) return false;
  }
}

bool Socket::graceful_close(std::chrono::nanoseconds drain_timeout) noexcept {
  if (fd_ < 0) return false;
  if (layer_) {
    const bool peer_closed = graceful_close_layer(Clock::now() + drain_timeout);
    close();
    return peer_closed;
  }
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
  } else if (errno == ENOTCONN) {
    // Both FINs were exchanged already (ours by an earlier shutdown): the connection is in
    // TIME_WAIT and reads end of stream at once.
    char probe;
    peer_closed = ::recv(fd_, &probe, 1, MSG_DONTWAIT) == 0;
  }
  close();
  return peer_closed;
}

void Socket::setblocking(bool blocking) {
  settimeout(blocking ? Timeout{} : Timeout{std::chrono::nanoseconds::zero()});
}

void Socket::settimeout(Timeout timeout) {
  if (timeout && timeout->count() < 0) throw std::invalid_argument("settimeout: negative timeout");
  // Python makes the descriptor non-blocking for any timeout and waits in poll(); here only
  // non-blocking mode (and a layer with a limit) does: a positive timeout is a kernel timer on
  // the blocking descriptor, set by the first call that needs it.
  const bool was_nonblocking = nonblocking_fd();
  timeout_ = timeout.value_or(std::chrono::nanoseconds(-1));
  if (const auto ec = sync_mode(was_nonblocking)) throw_error(ec, describe("settimeout"));
}

void Socket::set_deadline(std::optional<Clock::time_point> deadline) {
  if (deadline == Clock::time_point::max()) deadline.reset();
  const bool was_nonblocking = nonblocking_fd();
  deadline_ = deadline.value_or(Clock::time_point::max());
  if (const auto ec = sync_mode(was_nonblocking)) throw_error(ec, describe("set_deadline"));
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
