// SPDX-License-Identifier: MIT
/// @file
/// Connection: a connected socket on an event loop, with awaitable operations that read like the
/// blocking StreamRequestHandler of the seed.
///
/// ```
///   Task<void> handle(Connection conn) {
///     for (;;) {
///       std::string line = co_await conn.readline();
///       if (line.empty()) co_return;                  // the peer closed
///       co_await conn.sendall(upper(line));
///     }
///   }
/// ```
///
/// Every operation tries the syscall first and waits for readiness only after EAGAIN. sendall()
/// completes only when the kernel has taken every byte: a coroutine cannot produce faster than
/// its peer reads, so a slow reader never makes the server buffer without bound (backpressure).
/// Reads that need a buffer (readline, read_exact, read_frame) keep one while bytes are pending
/// and give it back before they wait with it empty: an idle connection owns no read buffer.
/// Operations are plain awaitables (not coroutines): awaiting one allocates nothing. Await them
/// where they are made, or hand them to with_timeout(); a buffered read's timeout covers the
/// whole call, so a peer trickling a byte at a time cannot keep a readline() going.
///
/// Errors and limits are the sockets layer's: TimeoutError after settimeout(), ConnectionError
/// when the peer resets, SocketError(errc::line_too_long / frame_too_large) past a limit, and
/// std::system_error(operation_canceled) when the task is cancelled (server shutdown, or the peer
/// vanished while the task was busy elsewhere).
///
/// Pipelined protocols: write() batches replies while buffered_input() says more requests are
/// already here, and sends them together when the input runs dry (examples/aio/resp_server.cpp).
///
/// Ownership: owns the socket (closed by the destructor or close()). Move-only. Thread safety:
/// belongs to the loop it was created on; one reader and one writer (sendall, write, flush) may
/// wait at the same time.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/aio/buffer_lease.hpp>
#include <sockserv/aio/detail/connection_ops.hpp>
#include <sockserv/aio/event_loop.hpp>
#include <sockserv/buffer.hpp>
#include <sockserv/framing.hpp>
#include <sockserv/proxy_protocol.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/stats.hpp>
#include <sockserv/tls/ssl_socket.hpp>
#include <sockserv/unix_credentials.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sockserv::aio {

/// A connected socket on an event loop, with awaitable operations that read like the blocking
/// StreamRequestHandler's: the handler's argument in AsyncTCPServer. Each operation returns an
/// awaitable: `co_await` it where it is made, or hand it to with_timeout().
///
/// Every operation may throw TimeoutError when a wait passes the timeout (settimeout()),
/// ConnectionError when the peer resets, SSLError and its subclasses over TLS, SocketError for
/// any other failure, and SocketError with std::errc::operation_canceled when the task is
/// cancelled (server shutdown, or the peer vanished while the task was busy elsewhere): the
/// members below name only what they add.
///
/// Ownership: owns the socket (closed by the destructor or close()). Move-only.
/// @threadsafety Belongs to the loop it was created on; one reader and one writer (sendall,
/// write, flush) may wait at the same time.
/// @python asyncio.StreamReader and asyncio.StreamWriter, as one object
class Connection {
 public:
  /// No connection (false).
  Connection() noexcept = default;
  /// Adopts a connected socket: makes it non-blocking and registers it with the event loop running
  /// on this thread.
  /// @throws std::logic_error when no event loop runs on this thread.
  /// @throws SocketError when the socket cannot be registered.
  explicit Connection(Socket sock);
  /// Takes over `other`'s socket; `other` is then false.
  Connection(Connection&&) noexcept = default;
  /// Closes this connection (as close()), then takes over `other`'s socket.
  Connection& operator=(Connection&& other) noexcept;
  /// close().
  ~Connection();

  /// True when the connection holds a socket state (not default-made or moved from).
  explicit operator bool() const noexcept { return static_cast<bool>(state_); }
  /// The socket's descriptor, or -1.
  int fileno() const noexcept { return state_ ? state_->sock.fileno() : -1; }
  /// The socket, for options and calls this class has no name for; read it only through this
  /// class (it buffers and counts).
  Socket& socket() noexcept { return state_->sock; }
  /// The peer's address (Python's client_address): the real client's when the server read a
  /// PROXY protocol header.
  /// @throws SocketError when getpeername() fails (the peer is gone).
  /// @python asyncio.StreamWriter.get_extra_info("peername")
  Address peer_address() const;
  /// Makes peer_address() return `address` (what the servers do with a PROXY header's client).
  void set_peer_address(const Address& address) {
    state_->peer_override = std::make_unique<Address>(address);
  }
  /// The peer's pid, uid and gid (SO_PEERCRED) on a Unix stream connection (unix_credentials.hpp).
  /// @throws SocketError for another family.
  PeerCredentials peer_credentials() const { return sockserv::peer_credentials(fileno()); }

  /// Each later operation may wait at most `timeout` (nullopt: no limit), then TimeoutError.
  /// @python socket.socket.settimeout
  void settimeout(Timeout timeout) noexcept {
    state_->timeout = timeout ? std::max(*timeout, std::chrono::nanoseconds::zero())
                              : std::chrono::nanoseconds(-1);
  }
  /// The timeout settimeout() set; nullopt: none.
  /// @python socket.socket.gettimeout
  Timeout gettimeout() const noexcept {
    if (state_->timeout.count() < 0) return std::nullopt;
    return state_->timeout;
  }
  /// Idle mode (the servers turn it on with their idle_timeout): a read that finds nothing
  /// buffered is a wait for the next request and may last `idle` (nullopt: no limit) instead of
  /// the timeout; once bytes of a request are buffered, each wait is under the timeout again (a
  /// buffered read that started idle switches when its first bytes arrive).
  void set_idle_timeout(Timeout idle) noexcept {
    state_->idle_timeout =
        idle ? std::max(*idle, std::chrono::nanoseconds::zero()) : std::chrono::nanoseconds(-1);
  }

  // --- Reading --------------------------------------------------------------------------------
  /// At most `max` bytes: what is buffered, else what one recv() brings; "" when the peer closed.
  /// @python asyncio.StreamReader.read
  detail::RecvStringOperation recv(std::size_t max = 65536);
  /// The same into `into` (replacing its contents, reusing its capacity); returns the byte count,
  /// 0 when the peer closed. The fast form for loops: `for (std::string s; co_await recv(s) > 0;)`.
  /// When it has to wait for data, it frees the string's buffer first: idle, it holds nothing.
  detail::RecvToStringOperation recv(std::string& into, std::size_t max = 65536);
  /// One recv() into `buffer` (zero copies): the byte count, 0 when the peer closed.
  /// @python asyncio.loop.sock_recv_into
  detail::RecvOperation recv_into(std::span<char> buffer);
  /// One recv() of at most `max` bytes (and BufferLease::block_size) straight into a buffer lent
  /// from the thread's pool (buffer_lease.hpp): no copy, no allocation once the pool is warm, and
  /// no buffer owned while waiting. An empty lease when the peer closed. Bytes already buffered
  /// by readline()/read_exact() come first (copied into the lease).
  detail::RecvLeaseOperation recv_lease(std::size_t max = BufferLease::block_size) {
    return {*state_, max};
  }
  /// Exactly `n` bytes.
  /// @throws ConnectionError (errc::connection_broken) when the peer closes first.
  /// @python asyncio.StreamReader.readexactly
  detail::ReadExactOperation read_exact(std::size_t n) { return {*state_, n}; }
  /// One line including '\n' (the last may lack it), "" at EOF. Its timeout covers the whole
  /// line.
  /// @throws SocketError (errc::line_too_long) when no '\n' comes within `max_len` bytes.
  /// @python asyncio.StreamReader.readline
  detail::ReadlineOperation readline(std::size_t max_len = 65536) { return {*state_, max_len}; }
  /// The next message of `codec`'s format (framing.hpp); nullopt when the peer closed between
  /// messages.
  /// @throws SocketError (errc::frame_too_large, errc::malformed_frame) for a bad frame.
  /// @throws ConnectionError (errc::connection_broken) when the peer closes inside a frame.
  detail::ReadFrameOperation read_frame(const Codec& codec) { return {*state_, codec}; }

  // --- Writing --------------------------------------------------------------------------------
  /// Sends all of `data`; completes when the kernel has taken it (backpressure). `data` must stay
  /// valid until the co_await completes (a temporary in the same expression does).
  /// @python asyncio.StreamWriter.write, then drain()
  detail::SendOperation sendall(std::string_view data);
  /// sendall() for any contiguous bytes (`std::span<char>`, `std::span<const char>`,
  /// `std::vector<char>`...).
  template <class Bytes>
  requires(std::convertible_to<Bytes, std::span<const char>> &&
           !std::convertible_to<Bytes, std::string_view>) detail::SendOperation
      sendall(const Bytes& data) {
    const std::span<const char> bytes(data);
    return sendall(std::string_view(bytes.data(), bytes.size()));
  }
  /// Sends a lease's bytes from its own buffer (an echo or a proxy copies nothing) and gives the
  /// buffer back when the kernel has taken them (the lease is empty then). The lease must stay
  /// valid until the co_await completes: pass std::move(lease), or the lease itself as a
  /// temporary of the same expression (`co_await conn.sendall(co_await other.recv_lease())`).
  detail::SendLeaseOperation sendall(BufferLease&& data) { return {*state_, data}; }

  // --- Pipelining: replies sent together (docs/adr/0005-pipelined-replies.md) ----------------
  /// Bytes received and not yet read (asyncio's StreamReader buffer): a request already here can
  /// be answered without waiting. Counts what the buffered reads (readline, read_exact,
  /// read_frame, read_buffer()) keep; recv() and recv_lease() leave nothing behind.
  std::size_t buffered_input() const noexcept;
  /// Sends `data`, batched with the next replies while more input is already buffered:
  ///   - nothing buffered to read (the input ran dry: the peer now waits for us): everything
  ///     held goes out with `data` in one send, completing as sendall() does. A request-reply
  ///     handler is unchanged: each write() is one send, with no copy;
  ///   - more input buffered (a pipelined request is already here): `data` is copied into the
  ///     connection's write buffer and the co_await completes at once, no syscall;
  ///   - the buffer holds write_buffer_limit() bytes or more: it is sent (memory stays bounded).
  ///
  /// Held bytes also go out before any read has to wait, before sendall() and lease sends (in
  /// order), on flush(), and with one attempt that does not wait in close() (aclose() waits).
  /// `data` may go away once write() returns. Throws as sendall() does.
  /// @python asyncio.StreamWriter.write
  detail::WriteOperation write(std::string_view data);
  /// Sends what write() holds; completes when the kernel has taken it (at once if nothing).
  /// @python asyncio.StreamWriter.drain
  detail::WriteOperation flush();
  /// Bytes write() holds, not yet sent.
  std::size_t buffered_output() const noexcept;
  /// write() sends once it holds this many bytes (default 64 KiB; at least 1). Memory per
  /// connection: up to the limit plus one reply.
  /// @{
  void set_write_buffer_limit(std::size_t bytes) noexcept;
  std::size_t write_buffer_limit() const noexcept { return state_->write_limit; }
  /// @}
  /// write_buffer_limit()'s default: 64 KiB.
  static constexpr std::size_t default_write_buffer_limit = 65536;
  /// Encodes `message` with `codec` (framing.hpp) and sends it as sendall() does.
  /// @throws SocketError (errc::frame_too_large, errc::malformed_frame) when the codec cannot
  ///         carry the message (Codec::encode()).
  Task<void> write_frame(const Codec& codec, std::string_view message);

  // --- TLS (docs/adr/0003-transport-model.md) ------------------------------------------------
  // Every operation above works unchanged over TLS when the socket carries a TLS layer (a
  // server with an ssl_context, open_connection with a context, or a wrapped Socket).
  /// Runs the TLS handshake: each wait within the timeout; wrap it in with_timeout() for a
  /// total deadline (the servers do). Cancellable like every operation.
  /// @throws SSLCertVerificationError, SSLEOFError, SSLError as SSLSocket::do_handshake().
  /// @python ssl.SSLSocket.do_handshake
  Task<void> do_handshake();
  /// The TLS state (version, cipher, ALPN, SNI, peer certificate), or nullptr when plain.
  /// @python asyncio.StreamWriter.get_extra_info("ssl_object")
  SSLObject* ssl_object() const noexcept { return sockserv::ssl_object(state_->sock); }

  // --- Ending ---------------------------------------------------------------------------------
  /// shutdown(2); SHUT_WR tells the peer we are done sending (it reads EOF). Over TLS,
  /// close_notify goes first.
  /// @throws ConnectionError when the peer is gone (ENOTCONN).
  /// @throws SocketError for any other failure (as Socket::shutdown()).
  /// @python asyncio.StreamWriter.write_eof
  void shutdown(int how = SHUT_WR);
  /// Unregisters and closes the socket. A pending operation must not be waiting. Over TLS it
  /// sends close_notify first, without waiting.
  /// @python asyncio.StreamWriter.close
  void close() noexcept;
  /// The polite end: close_notify (TLS), FIN, then reads and drops what the peer still sends
  /// until it closes or `timeout` passes, then close(). True when the peer closed in time (over
  /// TLS: with its close_notify, or at least its FIN). Never throws: a timeout, a reset or a
  /// cancellation ends the wait, and the connection is closed anyway.
  /// @python asyncio.StreamWriter.close, then wait_closed()
  Task<bool> aclose(std::chrono::nanoseconds timeout = std::chrono::seconds(2));

  /// Reads go through recv(2) on this connection's socket even under the io_uring backend,
  /// which otherwise receives for it into the loop's buffer ring once a read has had to wait:
  /// for code that reads the socket itself (a TLS layer attached later; your own recv calls).
  /// Call it before the first read.
  void read_with_syscalls() noexcept { state_->syscall_reads = true; }

  /// For the servers: the task to cancel when the peer hangs up while nobody waits on I/O.
  /// One owner per connection and one connection per owner; either may end first.
  void set_owner(CancelState* owner) noexcept;
  /// The server's counters, credited with this connection's byte counts when it closes.
  void set_stats(ServerStats* stats) noexcept { state_->stats = stats; }
  /// Bytes received so far (what the reads took from the socket).
  std::uint64_t bytes_received() const noexcept { return state_->bytes_in; }
  /// Bytes sent so far.
  std::uint64_t bytes_sent() const noexcept { return state_->bytes_out; }

  /// For protocol parsers of your own: the bytes received and not yet consumed.
  Buffer& read_buffer() noexcept { return state_->in; }
  /// For protocol parsers of your own: one more receive into read_buffer(); false at EOF. Each
  /// receive_more() waits up to the timeout on its own: to bound a whole parse, wrap it in
  /// with_timeout().
  Task<bool> receive_more();

 private:
  friend Task<Connection> open_connection(Address address, Timeout timeout);
  friend Task<Connection> open_connection(Address address, const SSLContext& context,
                                          std::string server_hostname, Timeout timeout);
  friend Task<ProxyHeader> read_proxy_header(Connection& conn);

  std::unique_ptr<detail::ConnectionState> state_;
};

/// Connects to `address` without blocking the loop.
/// @throws TimeoutError when `timeout` passes first.
/// @throws ConnectionError when the connection is refused or reset.
/// @throws SocketError for any other failure (and as Connection's constructor).
/// @python asyncio.open_connection
Task<Connection> open_connection(Address address, Timeout timeout = std::nullopt);
/// The same over TLS: connects, then runs the handshake as a client of `context`, sending
/// server_hostname (SNI) and verifying it when the context checks host names. `timeout` bounds
/// the connect and the handshake, each.
/// @throws SSLCertVerificationError, SSLError as Connection::do_handshake(), and as the other
///         overload.
/// @python asyncio.open_connection (with ssl= and server_hostname=)
Task<Connection> open_connection(Address address, const SSLContext& context,
                                 std::string server_hostname, Timeout timeout = std::nullopt);

/// Reads a PROXY protocol v1/v2 header at the start of `conn` (proxy_protocol.hpp); bytes after
/// it stay in the connection's buffer for the handler. The whole header must arrive within the
/// connection's timeout.
/// @throws SocketError (errc::malformed_frame) for a malformed or cut header.
/// @throws TimeoutError when the header does not arrive within the timeout.
Task<ProxyHeader> read_proxy_header(Connection& conn);

}  // namespace sockserv::aio
