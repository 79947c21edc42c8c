// SPDX-License-Identifier: MIT
/// @file
/// The event-loop servers: AsyncTCPServer, AsyncUnixStreamServer, AsyncUDPServer. Their handler
/// is a coroutine, and the vocabulary is the seed's where it applies.
///
/// ```
///   Task<void> upper(Connection conn) {
///     for (std::string line; !(line = co_await conn.readline()).empty();)
///       co_await conn.sendall(to_upper(line));
///   }
///   AsyncTCPServer server({"localhost", 9999}, upper);
///   server.serve_forever();            // one event loop, on this thread (see `threads`)
/// ```
///
/// Multi-core: with `threads` > 1, serve_forever() runs that many event loops (one on the calling
/// thread), and handlers run on several threads at once (the member says what that implies for
/// the data they share). They share
/// the one listening socket, each registered with EPOLLEXCLUSIVE, so the kernel wakes one idle
/// loop per new connection and a connection stays on the loop that accepted it. (The other
/// design, one SO_REUSEPORT listener per loop, spreads connections by a hash of their addresses
/// whether or not the loop is busy, and lets other processes join the port silently;
/// docs/BENCHMARKS.md measures both.)
///
/// Shutdown: shutdown() (any thread, or a handler) stops accepting, gives running handlers
/// `shutdown_grace` to finish, then cancels the rest (their pending operation throws
/// operation_canceled), waits for every task to end, and makes serve_forever() return.
///
/// Ownership: the server owns its listening socket and its loops. Thread safety: shutdown() from
/// anywhere; the rest from the thread that created the server.
#pragma once

#include <sockserv/access/access_policy.hpp>
#include <sockserv/address.hpp>
#include <sockserv/aio/connection.hpp>
#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/task.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/stats.hpp>
#include <sockserv/unix_credentials.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sockserv::aio {

/// The handler of a stream server: a coroutine given each accepted connection. Its exception
/// goes to AsyncServerBase::handle_error (cancellations are quiet; timeouts and peers gone are
/// counted and logged instead).
/// @python asyncio.start_server's client_connected_cb
using ConnectionHandler = std::function<Task<void>(Connection)>;

namespace detail {
struct Worker;
}

/// What the event-loop servers share: the socket, the loops, serve_forever() and shutdown(),
/// the limits and the exception boundary of a request's task. Not copyable.
/// @threadsafety shutdown() from anywhere; the rest from the thread that created the server,
/// before serve_forever() (attributes) or around it.
/// @python socketserver.BaseServer's vocabulary, on asyncio.Server's model
class AsyncServerBase {
 public:
  AsyncServerBase(const AsyncServerBase&) = delete;
  AsyncServerBase& operator=(const AsyncServerBase&) = delete;
  /// Removes the server's Unix socket file, if it made one.
  virtual ~AsyncServerBase();

  /// Runs the event loops until shutdown(); returns when every task has ended. A loop's own
  /// failure is reported on stderr, not thrown.
  /// @throws std::logic_error when the server is already serving.
  /// @throws SocketError when an event loop cannot be created (its backend).
  /// @python socketserver.BaseServer.serve_forever
  void serve_forever();
  /// Asks serve_forever() to stop and waits for it, unless called on one of the server's loops (a
  /// handler): then it only asks. Never deadlocks; returns at once when nothing serves.
  /// @threadsafety Safe from any thread, handlers included.
  /// @python socketserver.BaseServer.shutdown
  void shutdown();
  /// Closes the listening socket (and removes the server's Unix socket file). Idempotent.
  /// May be extended (call `AsyncServerBase::`), do not replace.
  /// @python socketserver.BaseServer.server_close
  virtual void server_close();
  /// server_bind(), then server_activate(); on failure the server is closed and the error
  /// rethrown. Called by the constructors unless told not to.
  /// @throws SocketError as server_bind() and server_activate().
  void bind_and_activate();
  /// Binds the socket to server_address (SO_REUSEADDR / SO_REUSEPORT first when asked), then
  /// reads back the address (port 0 becomes the real port). May be overridden.
  /// @throws SocketError when bind fails (EADDRINUSE, EACCES, ...) or the socket file's
  ///         permissions cannot be set.
  /// @python socketserver.TCPServer.server_bind
  virtual void server_bind();
  /// Makes the bound socket ready to receive (listen() for streams) and applies the options.
  /// @python socketserver.TCPServer.server_activate
  virtual void server_activate() = 0;
  /// Takes an already bound (and, for streams, listening) socket - systemd socket activation,
  /// inetd - instead of binding: construct with bind_and_activate = false, then call this.
  /// @throws SocketError when the socket's address cannot be read.
  /// @python asyncio.start_server(sock=...)
  void adopt_socket(Socket bound);

  /// Reports a handler's exception (not a cancellation, not a timeout, not a peer that went
  /// away: those are counted in stats). Default: stderr, with the address. May be overridden;
  /// called on the loop that ran the handler.
  /// @python socketserver.BaseServer.handle_error
  virtual void handle_error(const Address& client_address, std::exception_ptr error);

  /// Tasks (connections, datagrams) running now, over all loops.
  std::size_t active_tasks() const noexcept { return active_.load(); }
  /// The server's counters (stats.hpp): accepted, rejected, timed out, bytes...
  ServerStats stats;

  // --- Attributes ------------------------------------------------------------------------------
  /// The address the server is bound to (after bind: the real port).
  /// @python socketserver.BaseServer.server_address
  Address server_address;
  /// The listening (or, for UDP, receiving) socket.
  /// @python socketserver.BaseServer.socket
  Socket socket;
  /// Event loops serve_forever() runs: one on the calling thread, the others on threads it starts.
  /// Default 1, as asyncio: every handler runs on the one thread, so handlers may share plain data
  /// (a std::map of keys, a counter, a list of clients) without locks, as asyncio programs do.
  /// More loops are a choice to make knowingly: handlers then run on several threads at once (a
  /// connection stays on the loop that accepted it, but two connections may be on two loops), so
  /// anything handlers share needs a mutex or atomics, or one owning loop that the others reach
  /// through EventLoop::call_soon_threadsafe; verify_request() and handle_error() are called from
  /// any loop. One loop per core is std::thread::hardware_concurrency() (`sockserv serve`'s
  /// default). Set before serve_forever().
  std::size_t threads = 1;
  /// SO_REUSEADDR before bind (IP only). Stream servers: true, as asyncio's create_server and as
  /// TCPServer, so a restart binds while the last run's connections sit in TIME_WAIT (on Linux it
  /// never lets a second listener take the address). Datagram servers: false, as UDPServer (there
  /// it would let another socket bind the same port and take datagrams). docs/python-mapping.md.
  /// @python socketserver.BaseServer.allow_reuse_address
  bool allow_reuse_address;
  /// SO_REUSEPORT before bind: several processes on one port (AF_INET/AF_INET6 only).
  /// @python socketserver.BaseServer.allow_reuse_port
  bool allow_reuse_port = false;
  /// With threads > 1 (IP only): each loop but the first receives on a socket of its own, bound
  /// to the same address with SO_REUSEPORT, and the kernel spreads connections (datagrams) over
  /// them by a hash of the client's address. Default: all loops share the server's socket and
  /// epoll wakes one of them per connection (EPOLLEXCLUSIVE), so an idle loop takes the next
  /// one. docs/BENCHMARKS.md measures both. Set before bind_and_activate(), which binds them.
  bool listener_per_loop = false;
  /// Tasks at once, over all loops. At the limit the server stops accepting (connections wait
  /// in the kernel's backlog; datagrams in the socket buffer) until a task ends.
  std::size_t max_connections = 65536;
  /// Unix path servers: the socket file's mode and owner, set after bind and before listen, as
  /// TCPServer's.
  SocketFilePermissions socket_file_permissions;
  /// How long running handlers may go on after shutdown() before they are cancelled.
  std::chrono::nanoseconds shutdown_grace{0};
  /// The backend of the server's event loops (EventLoop::Backend).
  EventLoop::Backend backend = EventLoop::Backend::automatic;
  /// Who may connect (access/access_policy.hpp), as the blocking servers' member: checked right
  /// after accept, before verify_request and before a task is started. nullptr: everyone.
  std::shared_ptr<AccessPolicy> access_policy;

 protected:
  /// For derived classes: a server of `socket_type` (SOCK_STREAM, SOCK_DGRAM) for `address`'s
  /// family, not bound.
  /// @throws SocketError when the socket cannot be created.
  AsyncServerBase(const Address& address, int socket_type);
  /// The task each loop runs to take requests from the socket. For derived classes to override.
  virtual Task<void> receive_loop(detail::Worker& worker) = 0;
  /// Starts the task make_task(its cancel state) returns for one request on `worker`'s loop:
  /// counted, cancelled at shutdown, its exception reported with `client_address`.
  /// `admission` (the client's place under access_policy) is held until the task ends.
  template <class MakeTask>
  void start_task(detail::Worker& worker, const Address& client_address, MakeTask&& make_task,
                  Admission admission = {});
  /// Waits (polling every 10 ms, logging once) while max_connections tasks run.
  Task<void> wait_for_capacity();
  /// Exception boundary of a request task: a cancellation is quiet, a timeout is counted and
  /// logged, anything else goes to handle_error.
  void report_task_error(const Address& client_address, const std::exception_ptr& error) noexcept;
  /// Sets the server's options (keepalive, ...) on a socket it receives from. May be overridden.
  virtual void apply_socket_options(Socket&) {}
  /// Makes a bound socket ready to receive (listen() for streams) and applies the options.
  /// May be overridden.
  virtual void activate(Socket& s) { apply_socket_options(s); }
  /// True once shutdown() was called, until serve_forever() returns.
  bool stopping() const noexcept { return stopping_.load(); }

 private:
  void run_worker(detail::Worker& worker);
  // listener_per_loop: binds the sockets of loops 2..threads (those not bound yet).
  void open_loop_sockets();
  void begin_shutdown(detail::Worker& worker);
  // A request's task ended (CancelState::on_root_done): report, uncount, maybe stop the loop.
  static void finish_task(CancelState& state, std::exception_ptr error) noexcept;

  std::vector<std::unique_ptr<detail::Worker>> workers_;
  std::atomic<std::size_t> active_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::condition_variable stopped_;
  bool serving_ = false;
  struct UnixSocketFile;
  std::unique_ptr<UnixSocketFile> socket_file_;
  std::vector<Socket> loop_sockets_;  // listener_per_loop
};

/// A TCP server whose handler is a coroutine given each connection (Connection), with the
/// blocking TCPServer's attributes and defaults; optional TLS (set_ssl_context()) and PROXY
/// protocol.
/// @threadsafety As AsyncServerBase; set_ssl_context() from any thread at any time.
/// @python asyncio.start_server, with socketserver.TCPServer's attributes
class AsyncTCPServer : public AsyncServerBase {
 public:
  /// A server for `address` that runs `handler` for each connection. Binds and listens unless
  /// bind_and_activate is false (then set attributes and call bind_and_activate()).
  /// @throws SocketError when the socket cannot be created, bound or put to listen.
  /// @python socketserver.TCPServer (RequestHandlerClass, bind_and_activate)
  AsyncTCPServer(const Address& address, ConnectionHandler handler, bool bind_and_activate = true);
  ~AsyncTCPServer() override;

  /// listen(request_queue_size), then the options (keepalive, user timeout, TCP_NODELAY).
  /// @throws std::invalid_argument when allowed_credentials is set on a server that is not a
  ///         Unix stream server.
  /// @throws SocketError when listen() fails.
  /// @python socketserver.TCPServer.server_activate
  void server_activate() override;
  /// Return false to refuse a connection (it is closed at once). Called on a loop thread.
  /// Default: true. May be overridden.
  /// @python socketserver.BaseServer.verify_request
  virtual bool verify_request(const Address& client_address);

  /// The listen() backlog.
  /// @python socketserver.TCPServer.request_queue_size
  int request_queue_size = SOMAXCONN;
  /// Each connection's timeouts, set before the handler runs, with the same meaning and defaults
  /// as TCPServer's (docs/adr/0006-timeout-defaults.md); nullopt: none.
  /// connection_timeout, the stalled-request timeout: once a request has started arriving, every
  /// operation, and every buffered read (readline, read_exact, read_frame) as a whole, and every
  /// send must finish within it, so stalled or trickling clients and clients that stop reading
  /// are cut off (TimeoutError, counted in stats.timed_out). Default 30 s.
  Timeout connection_timeout = std::chrono::seconds(30);
  /// idle_timeout: how long a read that finds nothing buffered (a wait for the next request)
  /// may wait. Default nullopt: idle connections stay, as in Python, Redis and Go.
  Timeout idle_timeout;
  /// Dead-peer detection, as TCPServer's (set on the listening socket, inherited by connections).
  std::optional<KeepAlive> keepalive = KeepAlive{};
  /// TCP_USER_TIMEOUT, as TCPServer's: how long sent data may stay unacknowledged before the
  /// connection is dropped. nullopt: off (the kernel's default).
  std::optional<std::chrono::milliseconds> tcp_user_timeout = std::chrono::seconds(60);
  /// TCP_NODELAY on every connection (IP only), as StreamRequestHandler's attribute of this name:
  /// small writes go out at once instead of waiting for the ACK of earlier ones (Nagle). Off by
  /// default, as there. Set on the listening socket, which connections inherit (no system call per
  /// connection). TLS connections have it on whatever this says (TLS 1.3's tickets).
  /// @python socketserver.StreamRequestHandler.disable_nagle_algorithm
  bool disable_nagle_algorithm = false;
  /// Read a PROXY protocol v1/v2 header first; peer_address() becomes the real client's. A
  /// missing or malformed header closes that connection only (logged, stats.rejected).
  bool proxy_protocol = false;
  /// Unix stream servers: which peers are served, by their SO_PEERCRED uid or gid (empty: all).
  /// Others are closed right after accept, before a task is started (logged, counted in
  /// stats.denied_credentials), as TCPServer's.
  CredentialAllowList allowed_credentials;
  /// The handler each connection is given to.
  /// @python socketserver.BaseServer.RequestHandlerClass
  ConnectionHandler RequestHandlerClass;

  // --- TLS (docs/adr/0003-transport-model.md) --------------------------------------------------
  /// With a server context every connection is TLS; the handler is unchanged. The handshake runs
  /// in the connection's own task, after the PROXY header if any, within ssl_handshake_timeout
  /// as a whole. At most max_handshakes are in progress at once (over all loops, shared evenly):
  /// past that the *oldest* is dropped, so silent connections cannot hold every slot against a
  /// client whose handshake takes milliseconds. Failures close that connection only (logged,
  /// stats.tls_failures). When a handler returns, close_notify is sent (Connection::close;
  /// aclose() waits for the peer's). nullptr turns TLS off for new connections.
  /// @throws std::invalid_argument for a client context.
  /// @threadsafety Safe from any thread at any time (a reload).
  /// @python asyncio.start_server(ssl=...)
  void set_ssl_context(std::shared_ptr<const SSLContext> context);
  /// The context new connections get, or nullptr.
  /// @threadsafety Safe from any thread.
  std::shared_ptr<const SSLContext> ssl_context() const;
  /// The time a TLS handshake may take as a whole.
  /// @python asyncio.start_server(ssl_handshake_timeout=...)
  std::chrono::nanoseconds ssl_handshake_timeout = std::chrono::seconds(10);
  /// TLS handshakes in progress at once, over all loops (the oldest is dropped past it).
  std::size_t max_handshakes = 1024;

 protected:
  /// Accepts connections and starts a task for each (admission, verify_request, PROXY, TLS).
  Task<void> receive_loop(detail::Worker& worker) override;

 private:
  struct PendingHandshake;
  struct HandshakeQueue;
  Task<void> serve_tls(Connection conn, Address peer, std::shared_ptr<const SSLContext> context);
  // The queue of handshakes in progress on the calling thread's loop.
  HandshakeQueue& handshake_queue();
  std::mutex tls_mutex_;  // guards handshake_queues_
  SSLContextSlot ssl_context_;
  std::vector<std::pair<EventLoop*, std::shared_ptr<HandshakeQueue>>> handshake_queues_;

  void start_connection(detail::Worker& worker, Socket sock, const Address& peer,
                        Admission admission);
  Task<void> serve_proxied(Connection conn, Address peer);
  // Reads the PROXY header; false (logged, counted) when the connection must be dropped.
  Task<bool> accept_proxy_header(Connection& conn, Address& peer);
  void apply_socket_options(Socket& s) override;
  void activate(Socket& s) override;
};

/// AsyncTCPServer on a Unix stream socket (Address::unix_path / Address::abstract).
/// @python asyncio.start_unix_server, with socketserver.UnixStreamServer's attributes
class AsyncUnixStreamServer : public AsyncTCPServer {
 public:
  /// As AsyncTCPServer's constructor, for a Unix address.
  /// @throws std::invalid_argument when `address` is not a Unix address.
  /// @throws SocketError as AsyncTCPServer's.
  AsyncUnixStreamServer(const Address& address, ConnectionHandler handler,
                        bool bind_and_activate = true);
};

namespace detail {
class ReplyQueue;
}

/// One datagram and its sender; reply() answers it through the server's socket.
/// @python socketserver.DatagramRequestHandler's request (data, socket) and client_address
struct Datagram {
  std::string data;          ///< The datagram's bytes.
  Address address;           ///< The sender.
  Socket* socket = nullptr;  ///< The socket it arrived on (the server's).
  /// The receiving loop's reply queue (set by AsyncUDPServer; nullptr: reply() sends at once).
  detail::ReplyQueue* replies = nullptr;
  /// Sends `bytes` to the sender without blocking. In an AsyncUDPServer the replies made while a
  /// receive batch is being handled are gathered and sent with one sendmmsg once the batch's
  /// handlers have run; a reply made later goes out at once, unless earlier ones still wait (then
  /// it queues behind them: replies to one sender are never reordered). When the socket's buffer
  /// is full the queue waits and retries; past its bound (AsyncUDPServer::max_queued_replies)
  /// a reply is dropped, counted in stats.dropped and logged, and false is returned. true: sent
  /// or queued. Call it on the loop's thread (from the handler); from another thread it sends at
  /// once, as a Datagram without a queue does. Never throws a send failure: it returns false.
  bool reply(std::string_view bytes) const;
};

/// The handler of AsyncUDPServer: a coroutine given each datagram. Its exception goes to
/// AsyncServerBase::handle_error.
using DatagramHandler = std::function<Task<void>(Datagram)>;

/// Receives in batches: each loop takes up to 32 datagrams per recvmmsg into buffers it keeps
/// for its life (no allocation per datagram but the handler's copy of the bytes), starts their
/// handlers, lets them run, and sends the replies they made with one sendmmsg before it receives
/// again. docs/ARCHITECTURE.md (async UDP) has the details, docs/BENCHMARKS.md (UDP) the cost.
/// @threadsafety As AsyncServerBase.
/// @python asyncio.loop.create_datagram_endpoint, with socketserver.UDPServer's attributes
class AsyncUDPServer : public AsyncServerBase {
 public:
  /// A server for `address` that runs `handler` for each datagram. Binds unless
  /// bind_and_activate is false.
  /// @throws SocketError when the socket cannot be created or bound.
  /// @python socketserver.UDPServer (RequestHandlerClass, bind_and_activate)
  AsyncUDPServer(const Address& address, DatagramHandler handler, bool bind_and_activate = true);
  /// Sets receive_buffer_size on the socket.
  /// @throws SocketError when setsockopt fails.
  void server_activate() override;
  /// Datagrams larger than this are dropped and reported (never handed on cut short), counted in
  /// stats.accept_errors. 65,507 is the largest UDP payload over IPv4 (65,535 less the 8-byte UDP
  /// and 20-byte IP headers), so by default every datagram IPv4 can carry is served; the
  /// blocking servers have the same default. Each loop keeps a receive batch of
  /// min(32, 4 MiB / max_packet_size) buffers of this size (address space: the kernel backs
  /// only the pages that datagrams reach).
  /// @python socketserver.UDPServer.max_packet_size
  std::size_t max_packet_size = 65507;
  /// SO_RCVBUF asked for each receiving socket: room for bursts while the loops are busy. The
  /// kernel doubles the value and caps it at net.core.rmem_max (Debian: 208 KiB unless raised);
  /// 0 leaves the system's default. docs/OPERATIONS.md has the sysctl.
  int receive_buffer_size = 4 << 20;
  /// Replies a loop keeps while its socket's send buffer is full (sendmmsg: EAGAIN), and the
  /// bytes they may hold; past either bound a reply is dropped (stats.dropped, one log line per
  /// episode). A reply that cannot be sent for about a second is dropped too, so one Unix peer
  /// that does not read cannot hold the others' replies back for ever.
  /// @{
  std::size_t max_queued_replies = 4096;
  std::size_t max_queued_reply_bytes = std::size_t{4} << 20;
  /// @}
  /// The handler each datagram is given to.
  /// @python socketserver.BaseServer.RequestHandlerClass
  DatagramHandler RequestHandlerClass;

 protected:
  /// Receives batches of datagrams and starts a task for each.
  Task<void> receive_loop(detail::Worker& worker) override;
  /// Sets receive_buffer_size (SO_RCVBUF) on a receiving socket.
  void apply_socket_options(Socket& s) override;
};

}  // namespace sockserv::aio
