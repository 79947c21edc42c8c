// SPDX-License-Identifier: MIT
/// @file
/// Socket: one socket descriptor, owned. The vocabulary is Python's `socket` module, so the
/// HOWTO's programs translate line for line:
///
/// ```
///   Python                                   sockserv
///   s = socket.socket(AF_INET, SOCK_STREAM)  Socket s(AF_INET, SOCK_STREAM);
///   s.connect(("www.python.org", 80))        s.connect(Address::lookup("www.python.org:80"));
///   s.sendall(b"GET / ...")                  s.sendall("GET / ...");
///   chunk = s.recv(2048)                     std::string chunk = s.recv(2048);
///   s.settimeout(5.0)                        s.settimeout(5s);
///   s.shutdown(socket.SHUT_WR)               s.shutdown(SHUT_WR);
/// ```
///
/// Ownership: move-only; the destructor closes the descriptor. Every socket is close-on-exec.
/// Thread safety: distinct Sockets are independent. One Socket may be read by one thread while
/// another writes to it (the kernel allows it and Socket keeps no per-call state), but
/// settimeout()/close() must not race with calls in flight.
///
/// Errors (docs/adr/0001-error-model.md): the throwing calls raise SocketError, TimeoutError or
/// ConnectionError (error.hpp) with the operation and address in the message. The overloads that
/// take std::error_code& never throw: they are for loops where EAGAIN is control flow. EINTR is
/// retried inside every call, and no call raises SIGPIPE (MSG_NOSIGNAL on every send).
///
/// Timeouts follow Python: nullopt = blocking; zero = non-blocking (EAGAIN is an error:
/// std::errc::resource_unavailable_try_again); a positive duration = each blocking call may take at
/// most that long, then throws TimeoutError. sendall() and recv_exact() count their whole
/// duration against one timeout, as Python's sendall does since 3.5. Unlike Python, a timeout
/// costs no syscall of its own: the descriptor stays blocking and the kernel enforces the time
/// left (SO_RCVTIMEO/SO_SNDTIMEO, set only when it has to change), so a timed recv() is one
/// recv(2) whether or not data is waiting (docs/adr/0004-kernel-timers.md). MSG_DONTWAIT in
/// `flags` makes that one call non-blocking. Over a stream layer (TLS) the descriptor is
/// non-blocking and waits happen in poll().
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/detail/stream_layer.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace sockserv {

/// A socket timeout, as Python's settimeout() takes it: nullopt blocks without a limit, zero is
/// non-blocking, a positive duration bounds each blocking call.
using Timeout = std::optional<std::chrono::nanoseconds>;

/// What recvfrom_into() reports: bytes stored, the sender, and whether the datagram was larger
/// than the buffer (the rest was dropped by the kernel; Python would not tell you).
/// @python the (nbytes, address) tuple of socket.socket.recvfrom_into, plus `truncated`
struct RecvFromResult {
  std::size_t size = 0;    ///< bytes stored in the buffer
  Address address;         ///< the sender
  bool truncated = false;  ///< the datagram was larger than the buffer (MSG_TRUNC)
};

/// Keepalive probing of an idle connection (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT): a peer
/// that vanished is found about idle + interval x count after the last traffic.
struct KeepAlive {
  std::chrono::seconds idle{60};      ///< silence before the first probe
  std::chrono::seconds interval{10};  ///< between probes
  int count = 6;                      ///< unanswered probes before the connection is dropped
};

/// One socket descriptor, owned, with the calls of Python's socket object. socket.hpp has
/// the timeout rules and the error model.
/// @threadsafety Distinct Sockets are independent. One thread may read while another writes;
/// settimeout(), set_deadline() and close() must not race with calls in flight.
/// @python socket.socket
class Socket {
 public:
  /// An empty socket (fileno() == -1).
  Socket() noexcept = default;
  /// socket(2) with SOCK_CLOEXEC; SOCK_NONBLOCK in `type` makes it non-blocking (timeout 0).
  /// @throws SocketError when the kernel refuses (EMFILE, EAFNOSUPPORT, ...).
  /// @python socket.socket(family, type, proto)
  Socket(int family, int type, int protocol = 0);
  /// Takes ownership of an open descriptor (Python's socket(fileno=fd)), e.g. one inherited from
  /// systemd; reads its family and type from the kernel.
  /// @throws SocketError when `fd` is not a socket (the descriptor is then not taken).
  /// @python socket.socket(fileno=fd)
  static Socket from_fd(int fd);
  /// Takes ownership of `fd` whose family and type the caller knows (no syscall: the accept path
  /// of the event loop). `nonblocking` says the descriptor already is.
  static Socket adopt(int fd, int family, int type, bool nonblocking = false) noexcept;

  /// Takes over the other's descriptor, mode and stream layer; the other is left empty.
  /// Assignment closes this socket's descriptor first.
  /// @{
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  /// @}
  /// Not copyable: one owner per descriptor (Python's dup() has no counterpart here).
  /// @{
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  /// @}
  /// close().
  ~Socket();

  /// The descriptor, still owned; -1 when empty or closed.
  /// @python socket.socket.fileno
  int fileno() const noexcept { return fd_; }
  /// True while the socket holds a descriptor.
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// AF_INET, AF_INET6, AF_UNIX, ...
  /// @python socket.socket.family
  int family() const noexcept { return family_; }
  /// SOCK_STREAM, SOCK_DGRAM, ...: without the SOCK_NONBLOCK and SOCK_CLOEXEC flags (as Python's
  /// socket.type since 3.7).
  /// @python socket.socket.type
  int type() const noexcept { return type_; }

  // --- Server side -----------------------------------------------------------------------------
  /// Binds to `address`.
  /// @throws SocketError (EADDRINUSE, EACCES, ...) naming the address.
  /// @python socket.socket.bind
  void bind(const Address& address);
  /// Starts listening; the kernel caps `backlog` at net.core.somaxconn.
  /// @throws SocketError when the kernel refuses.
  /// @python socket.socket.listen
  void listen(int backlog = SOMAXCONN);
  /// The new connection (blocking, close-on-exec, no timeout) and the peer's address; waits
  /// under the listener's timeout and deadline.
  /// @throws TimeoutError when the timeout or deadline passes first.
  /// @throws SocketError for any other failure (EAGAIN in non-blocking mode, EMFILE, ...).
  /// @python socket.socket.accept
  std::pair<Socket, Address> accept();
  /// accept() that never throws: the failure (EAGAIN included) is in `ec`, with an empty pair.
  std::pair<Socket, Address> accept(std::error_code& ec) noexcept;

  // --- Client side -----------------------------------------------------------------------------
  /// Connects, honouring the timeout and deadline (a timed connect waits in poll()).
  /// @throws ConnectionError when the peer refuses (ECONNREFUSED).
  /// @throws TimeoutError when the timeout or deadline passes first.
  /// @throws SocketError for any other failure.
  /// @python socket.socket.connect
  void connect(const Address& address);
  /// Python's connect_ex: 0 on success, else the errno value (EINPROGRESS for a non-blocking
  /// socket). Never throws.
  /// @python socket.socket.connect_ex
  int connect_ex(const Address& address) noexcept;

  // --- Data --------------------------------------------------------------------------------------
  /// One send(2): returns how many bytes went out, which may be fewer than asked (the HOWTO's
  /// point: "it is your responsibility to call them again until your message has been completely
  /// dealt with").
  /// @throws ConnectionError when the peer is gone (EPIPE, ECONNRESET).
  /// @throws TimeoutError when the timeout or deadline passes before any byte went out.
  /// @throws SocketError for any other failure (EAGAIN in non-blocking mode).
  /// @python socket.socket.send
  std::size_t send(std::string_view data, int flags = 0);
  /// send() that never throws: 0 with the failure (EAGAIN included) in `ec`.
  std::size_t send(std::string_view data, std::error_code& ec, int flags = 0) noexcept;
  /// Sends all of `data`, looping over partial sends, all within one timeout. When it throws, an
  /// unknown prefix of the data was sent.
  /// @throws ConnectionError, TimeoutError or SocketError, as send().
  /// @python socket.socket.sendall
  void sendall(std::string_view data, int flags = 0);

  /// One recv(2) into `buffer`: the byte count, 0 when the peer has closed.
  /// @throws ConnectionError when the peer reset the connection.
  /// @throws TimeoutError when the timeout or deadline passes first.
  /// @throws SocketError for any other failure (EAGAIN in non-blocking mode).
  /// @python socket.socket.recv_into
  std::size_t recv_into(std::span<char> buffer, int flags = 0);
  /// recv_into() that never throws: 0 with the failure (EAGAIN included) in `ec`; 0 without
  /// `ec` is the peer's end of stream.
  std::size_t recv_into(std::span<char> buffer, std::error_code& ec, int flags = 0) noexcept;
  /// One recv(2) that waits at most until `deadline` (or the socket's own timeout/deadline if
  /// earlier), for readers that give a whole call one deadline (SocketFile::readline). Unlike
  /// set_deadline() it changes nothing on the socket, so another thread may write meanwhile.
  /// @throws ConnectionError, TimeoutError or SocketError, as recv_into().
  std::size_t recv_into_until(std::span<char> buffer,
                              std::chrono::steady_clock::time_point deadline);
  /// One recv(2) for a reader waiting for the start of a message (an idle connection): it waits
  /// at most `idle` (nullopt: no limit) *instead of* the socket's timeout, which may be shorter;
  /// the socket's deadline still applies. A non-blocking socket does not wait. Changes nothing
  /// on the socket.
  /// @throws ConnectionError, TimeoutError (when `idle` passes) or SocketError, as recv_into().
  std::size_t recv_into_idle(std::span<char> buffer, Timeout idle);
  /// One recv(2) of at most `bufsize` bytes; empty when the peer has closed.
  /// @throws ConnectionError, TimeoutError or SocketError, as recv_into().
  /// @python socket.socket.recv
  std::string recv(std::size_t bufsize, int flags = 0);
  /// Exactly `n` bytes (the HOWTO's receive loop), all within one timeout.
  /// @throws ConnectionError with errc::connection_broken when the peer closes first.
  /// @throws TimeoutError or SocketError, as recv_into().
  std::string recv_exact(std::size_t n);

  /// One datagram of at most `bufsize` bytes and its sender.
  /// @throws SocketError with errc::datagram_truncated when the datagram was larger than
  ///         `bufsize` (Python cuts it silently).
  /// @throws TimeoutError or SocketError, as recv_into().
  /// @python socket.socket.recvfrom
  std::pair<std::string, Address> recvfrom(std::size_t bufsize, int flags = 0);
  /// One datagram into `buffer`; a datagram larger than the buffer is reported in the result's
  /// `truncated`, not thrown.
  /// @throws TimeoutError or SocketError, as recv_into().
  /// @python socket.socket.recvfrom_into
  RecvFromResult recvfrom_into(std::span<char> buffer, int flags = 0);
  /// recvfrom_into() that never throws: the failure (EAGAIN included) is in `ec`.
  RecvFromResult recvfrom_into(std::span<char> buffer, std::error_code& ec, int flags = 0) noexcept;
  /// One datagram to `address`; returns the bytes sent (all of them, for a datagram).
  /// @throws TimeoutError or SocketError (EMSGSIZE for a datagram too large, ...).
  /// @python socket.socket.sendto
  std::size_t sendto(std::string_view data, const Address& address, int flags = 0);

  // --- Ending a connection -----------------------------------------------------------------------
  /// shutdown(2): SHUT_RD, SHUT_WR ("I'm done sending", the peer's recv returns 0) or SHUT_RDWR.
  /// Over TLS, SHUT_WR and SHUT_RDWR send close_notify first.
  /// @throws SocketError (ENOTCONN: not connected).
  /// @python socket.socket.shutdown
  void shutdown(int how);
  /// Releases the descriptor. Never throws; a second close() does nothing.
  /// @python socket.socket.close
  void close() noexcept;
  /// The HOWTO's polite disconnect: shutdown(SHUT_WR), then read and discard what the peer still
  /// sends until it closes or `drain_timeout` passes, then close(). The peer sees EOF after all our
  /// data, not a reset that can destroy data still in flight. Returns true when the peer closed
  /// within the deadline. Never throws.
  bool graceful_close(std::chrono::nanoseconds drain_timeout = std::chrono::seconds(1)) noexcept;
  /// Gives up ownership: returns the descriptor and leaves this Socket empty (a stream layer,
  /// TLS, is dropped without a word to the peer).
  /// @python socket.socket.detach
  int detach() noexcept;

  // --- Stream layer (docs/adr/0003-transport-model.md) ----------------------------------------
  /// The layer the byte calls go through (TLS), or nullptr for a plain socket. Set by
  /// wrap_socket(); the Socket owns it, and moving the Socket moves it along.
  detail::StreamLayer* layer() const noexcept { return layer_.get(); }
  /// Installs `layer` (wrap_socket() does), replacing any; the descriptor's mode is adjusted.
  void set_layer(std::unique_ptr<detail::StreamLayer> layer) noexcept;
  /// Removes the layer and returns it (TLS unwrap()); the socket is plain again.
  std::unique_ptr<detail::StreamLayer> release_layer() noexcept;
  /// A step of a layer's handshake or close: >= 0 when done, else -1 with the readiness it
  /// needs in `want` or the failure in `ec`.
  using LayerStep = int (*)(detail::StreamLayer& layer, short& want, std::error_code& ec);
  /// Runs `step` (a layer's handshake or close) until it reports done (>= 0), waiting for the
  /// readiness it asks for under the socket's timeout and deadline, one deadline for the whole
  /// call; `op` names the call in the message.
  /// @throws std::logic_error when the socket has no stream layer.
  /// @throws TimeoutError, ConnectionError or SocketError (an SSLError from a TLS layer), as the
  ///         byte calls do.
  void drive_layer(std::string_view op, LayerStep step);

  // --- Modes -------------------------------------------------------------------------------------
  /// setblocking(false) is settimeout(0); setblocking(true) is settimeout(nullopt).
  /// @throws SocketError when the descriptor's mode cannot be changed.
  /// @python socket.socket.setblocking
  void setblocking(bool blocking);
  /// False in non-blocking mode (timeout 0).
  /// @python socket.socket.getblocking
  bool getblocking() const noexcept { return timeout_.count() != 0; }
  /// Sets the timeout (socket.hpp has the rules).
  /// @throws std::invalid_argument for a negative timeout.
  /// @throws SocketError when the descriptor's mode cannot be changed.
  /// @python socket.socket.settimeout
  void settimeout(Timeout timeout);
  /// The timeout; nullopt when blocking without a limit.
  /// @python socket.socket.gettimeout
  Timeout gettimeout() const noexcept { return has_timeout() ? Timeout(timeout_) : std::nullopt; }
  /// An absolute deadline for every blocking call from now on (Go's SetDeadline): a call still
  /// waiting at `deadline` throws TimeoutError, whatever the timeout says. nullopt removes it.
  /// Not to be changed while another thread is in a call on this socket. (time_point::max() is
  /// the same as nullopt: no deadline.)
  /// @throws SocketError when the descriptor's mode cannot be changed.
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline);
  /// The deadline set by set_deadline(), if any.
  std::optional<std::chrono::steady_clock::time_point> get_deadline() const noexcept {
    if (!has_deadline()) return std::nullopt;
    return deadline_;
  }

  // --- Names -------------------------------------------------------------------------------------
  /// The socket's own address.
  /// @throws SocketError when the call fails (EBADF: the socket is closed).
  /// @python socket.socket.getsockname
  Address getsockname() const;
  /// The connected peer's address.
  /// @throws SocketError when the call fails (ENOTCONN: not connected).
  /// @python socket.socket.getpeername
  Address getpeername() const;

  // --- Options (socket_options.cpp) ------------------------------------------------------------
  /// Sets an integer option.
  /// @throws SocketError when the kernel refuses.
  /// @python socket.socket.setsockopt
  void setsockopt(int level, int name, int value);
  /// Reads an integer option.
  /// @throws SocketError when the kernel refuses.
  /// @python socket.socket.getsockopt
  int getsockopt(int level, int name) const;
  /// SO_REUSEADDR (before bind). @throws SocketError when the kernel refuses.
  void set_reuse_address(bool on);
  /// SO_REUSEPORT (before bind). @throws SocketError when the kernel refuses.
  void set_reuse_port(bool on);
  /// TCP_NODELAY: no Nagle delay for small writes. @throws SocketError when the kernel refuses.
  void set_nodelay(bool on);
  /// Whether TCP_NODELAY is on. @throws SocketError when the kernel refuses.
  bool get_nodelay() const;
  /// SO_KEEPALIVE with the kernel's intervals. @throws SocketError when the kernel refuses.
  void set_keepalive(bool on);
  /// Turns keepalive on with these intervals. @throws SocketError when the kernel refuses.
  void set_keepalive(const KeepAlive& probing);
  /// TCP_USER_TIMEOUT: how long sent data may stay unacknowledged before the kernel drops the
  /// connection (a dead peer is detected even while we are sending).
  /// @throws SocketError when the kernel refuses.
  void set_user_timeout(std::chrono::milliseconds timeout);
  /// SO_LINGER: nullopt = off (the default); 0 s = close() resets the connection (RST).
  /// @throws SocketError when the kernel refuses.
  void set_linger(std::optional<std::chrono::seconds> linger);
  /// SO_SNDBUF and SO_RCVBUF (the kernel doubles what is set, and reports the doubled size).
  /// @throws SocketError when the kernel refuses.
  /// @{
  void set_send_buffer_size(int bytes);
  void set_recv_buffer_size(int bytes);
  int get_send_buffer_size() const;
  int get_recv_buffer_size() const;
  /// @}
  /// IPV6_V6ONLY (before bind): false lets an IPv6 wildcard accept IPv4 too.
  /// @throws SocketError when the kernel refuses.
  void set_ipv6_only(bool on);
  /// The pending error (SO_ERROR), cleared by reading it.
  /// @throws SocketError when the option cannot be read.
  std::error_code get_error() const;

 private:
  struct Adopt {};
  Socket(Adopt, int fd, int family, int type) noexcept
      : fd_(fd), family_(static_cast<std::int16_t>(family)), type_(base_type(type)) {}
  static std::int16_t base_type(int type) noexcept {
    return static_cast<std::int16_t>(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC));
  }
  bool has_timeout() const noexcept { return timeout_.count() >= 0; }
  bool has_deadline() const noexcept {
    return deadline_ != std::chrono::steady_clock::time_point::max();
  }
  // How a blocking call waits: not at all beyond the syscall itself (non-blocking mode, or
  // blocking without a limit), in poll() (a stream layer, whose descriptor is non-blocking), or
  // in the syscall under a kernel timer (a plain socket with a timeout or a deadline).
  enum class Wait : std::uint8_t { none, poll, kernel };
  Wait wait_mode() const noexcept {
    if (!getblocking() || plain_blocking()) return Wait::none;
    return layer_ ? Wait::poll : Wait::kernel;
  }
  // The O_NONBLOCK the descriptor has in the current mode: in non-blocking mode, and under a
  // layer with a timeout or a deadline (the layer's reads must never block in the kernel).
  bool nonblocking_fd() const noexcept {
    return timeout_.count() == 0 || (layer_ && !plain_blocking());
  }
  // Sets O_NONBLOCK if `was_nonblocking` (the mode before a change) differs from the mode now,
  // and removes the kernel timers once nothing needs them (a bare call must never time out).
  std::error_code sync_mode(bool was_nonblocking) noexcept;
  // One socket call under `how` (socket.cpp has the rules); `timer` is the direction's kernel
  // timer.
  template <class Call>
  static ssize_t io_call(int fd, short events, Wait how,
                         std::chrono::steady_clock::time_point deadline, std::uint32_t& timer,
                         std::error_code& ec, Call call) noexcept;
  std::uint32_t& kernel_timer(bool sending) noexcept {
    return sending ? send_timer_us_ : recv_timer_us_;
  }
  // Waits until `events` (POLLIN/POLLOUT) are ready or `deadline` passes; ec = timed_out then.
  void wait_ready(short events, std::chrono::steady_clock::time_point deadline,
                  std::error_code& ec) const noexcept;
  std::chrono::steady_clock::time_point deadline() const noexcept;
  // True when blocking calls wait in poll() (a timeout or a deadline is set, and the socket is
  // not in non-blocking mode).
  bool waits() const noexcept;
  // Blocking without a timeout or a deadline: the kernel does all the waiting.
  bool plain_blocking() const noexcept { return !has_timeout() && !has_deadline(); }
  // ... and no stream layer: a call is the bare syscall (the hot path of thread-per-connection
  // handlers).
  bool bare() const noexcept { return plain_blocking() && !layer_; }
  // One recv (into `in`) or send (of `out`) under the socket's mode, through the layer if there
  // is one; waits up to `until` as `how` says. -1 with `ec` on failure.
  enum class Direction : bool { receive, send };
  ssize_t transfer(Direction direction, std::span<char> in, std::string_view out, int flags,
                   Wait how, std::chrono::steady_clock::time_point until,
                   std::error_code& ec) noexcept;
  // The failure of a transfer, with the layer's reason when it has one.
  [[noreturn]] void fail_transfer(std::error_code ec, std::string_view op) const;
  // The layer's goodbye (TLS: close_notify), waiting for the readiness it needs until `until`
  // when `may_wait`; a peer that is gone is not an error here.
  void close_layer(std::chrono::steady_clock::time_point until, bool may_wait) noexcept;
  bool graceful_close_layer(std::chrono::steady_clock::time_point until) noexcept;
  // After a bare receive failed with `err`: true when that was the kernel timer an idle wait
  // left behind (recv_into_idle), now removed, so the call is to be made again.
  bool drop_idle_timer(int flags, int err) noexcept;
  // sendall / recv_into when they may wait in poll() (a timeout or a deadline is set).
  void sendall_waiting(std::string_view data, int flags);
  std::size_t recv_into_waiting(std::span<char> buffer, int flags);
  // Throws the error for errno after `op` failed.
  [[noreturn]] void fail(std::string_view op) const;
  std::string describe(std::string_view op) const;
  // connect_ex() on a descriptor in its current blocking mode.
  int connect_polled(const Address& address) noexcept;

  // 40 bytes: every connection a server holds has a Socket, so the optionals are sentinels.
  int fd_ = -1;
  std::int16_t family_ = AF_UNSPEC;
  std::int16_t type_ = 0;
  std::chrono::nanoseconds timeout_{-1};  // negative: none (blocking)
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::unique_ptr<detail::StreamLayer> layer_;
  // The SO_RCVTIMEO / SO_SNDTIMEO the descriptor carries, in microseconds (0: none). Each is
  // touched only by calls in its own direction, so a reader and a writer thread do not race.
  std::uint32_t recv_timer_us_ = 0;
  std::uint32_t send_timer_us_ = 0;
};

/// Two connected sockets, close-on-exec.
/// @throws SocketError when the kernel refuses.
/// @python socket.socketpair
std::pair<Socket, Socket> socketpair(int family = AF_UNIX, int type = SOCK_STREAM,
                                     int protocol = 0);

/// A stream socket connected to `address`; `timeout` is set on the socket first and bounds the
/// connect.
/// @throws ConnectionError, TimeoutError or SocketError, as Socket::connect.
/// @python socket.create_connection
Socket create_connection(const Address& address, Timeout timeout = std::nullopt);
/// Connects to `host`:`port`, trying each address the name resolves to in turn, in the
/// resolver's order; `timeout` applies to each attempt.
/// @throws SocketError (gai_category()) when the name does not resolve.
/// @throws SocketError (ConnectionError, TimeoutError...): the first attempt's error, when every
///         attempt fails.
/// @python socket.create_connection((host, port), timeout)
Socket create_connection(std::string_view host, std::uint16_t port, Timeout timeout = std::nullopt);

/// The options of create_server().
/// @python the keyword arguments of socket.create_server
struct ServerOptions {
  int backlog = SOMAXCONN;  ///< listen()'s backlog
  bool reuse_port = false;  ///< SO_REUSEPORT (inet addresses)
  /// For an IPv6 wildcard address: accept IPv4 connections too (IPV6_V6ONLY off).
  bool dualstack_ipv6 = false;
  bool reuse_address = true;  ///< Python's create_server sets SO_REUSEADDR on POSIX too
};

/// A bound, listening stream socket (Python's socket.create_server). For a Unix path, a stale
/// socket file left by a dead server is removed first; a live one (something accepts on it) is
/// an error.
/// @throws SocketError when a step fails (EADDRINUSE for an address or live Unix socket in use).
/// @python socket.create_server
Socket create_server(const Address& address, const ServerOptions& options = {});

}  // namespace sockserv
