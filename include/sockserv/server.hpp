// SPDX-License-Identifier: MIT
/// @file
/// The socketserver framework: Python's socketserver module in C++, with the same class, method
/// and attribute names (docs/python-mapping.md lists every name and each deliberate difference).
///
/// ```
///   BaseServer
///    └─ TCPServer ─────────► UnixStreamServer
///        └─ UDPServer ─────► UnixDatagramServer
///   ThreadingMixIn<S>, ForkingMixIn<S> (mixins.hpp) apply to any of them.
/// ```
///
/// A server is given its handler as a factory: handler<MyHandler>() for a handler class
/// (handlers.hpp), or any callable taking (Request&, const Address&, BaseServer&).
///
/// ```
///   TCPServer server({"localhost", 9999}, handler<MyTCPHandler>());
///   server.serve_forever();
/// ```
///
/// ```
/// Methods for the caller:           serve_forever, shutdown, handle_request, server_close, fileno
/// Methods that may be overridden:   server_bind, server_activate, verify_request,
///                                   process_request, finish_request, shutdown_request,
///                                   close_request, handle_error, handle_timeout,
///                                   service_actions, handle_accept_error, get_request
/// Attributes (public members, set them before serving): server_address, timeout; on TCPServer
/// also socket, address_family, socket_type, request_queue_size, allow_reuse_address,
/// allow_reuse_port; on UDPServer max_packet_size.
/// ```
///
/// Ownership and threads: a server owns its listening socket and is neither copyable nor movable
/// (handler threads hold a reference to it). shutdown() is safe from any thread, including a
/// handler; everything else belongs to the thread that serves. Destroying a server closes it
/// (Python's `with` block); stop serve_forever() with shutdown() first.
#pragma once

#include <sockserv/access/access_policy.hpp>
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/stats.hpp>
#include <sockserv/tls/ssl_context.hpp>
#include <sockserv/unix_credentials.hpp>

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace sockserv {

class BaseServer;

/// One request. For a stream server: the connected socket, owned by the request. For a datagram
/// server: the datagram, plus the server's socket to reply through (Python's (data, socket)).
/// Move-only.
/// @threadsafety One thread at a time: the one handling the request.
/// @python the `request` a socketserver handler gets (a socket, or a (data, socket) pair)
class Request {
 public:
  /// No request (an empty socket).
  Request() = default;
  /// A stream request owning `connection`.
  explicit Request(Socket connection) noexcept : connection_(std::move(connection)) {}
  /// A datagram request: `packet`, and the server's socket (not owned) to reply through.
  Request(std::string packet, Socket& server_socket) noexcept
      : server_socket_(&server_socket), packet_(std::move(packet)) {}

  /// The connection (stream) or the server's socket (datagram).
  Socket& socket() noexcept { return server_socket_ ? *server_socket_ : connection_; }
  /// True for a datagram request.
  bool is_datagram() const noexcept { return server_socket_ != nullptr; }
  /// The datagram's bytes; empty for a stream request.
  const std::string& packet() const noexcept { return packet_; }
  /// The idle timeout of a stream request (TCPServer::idle_timeout, set by the server); unset for
  /// a Request made by hand, whose reads all wait under the socket's timeout.
  /// @{
  void set_idle_timeout(Timeout idle) noexcept { idle_ = idle; }
  const std::optional<Timeout>& idle_timeout() const noexcept { return idle_; }
  /// @}
  /// The peer's pid, uid and gid (SO_PEERCRED) on a Unix stream connection, in every mode
  /// (unix_credentials.hpp).
  /// @throws SocketError for another family or a datagram request.
  PeerCredentials peer_credentials() const { return sockserv::peer_credentials(connection_); }

  /// One receive of at most `bufsize` bytes, so a stream handler reads as in Python:
  /// request.recv(1024). On a stream request from a server, recv() is an idle wait: it may wait
  /// up to idle_timeout() rather than the socket's timeout (it cannot tell a pause between
  /// messages from one inside a message; request.socket().recv() waits under the socket's
  /// timeout).
  /// @throws TimeoutError, ConnectionError or SocketError, as Socket::recv.
  /// @python socket.socket.recv on the handler's request
  std::string recv(std::size_t bufsize);
  /// socket().send(data).
  /// @throws ConnectionError, TimeoutError or SocketError, as Socket::send.
  /// @python socket.socket.send on the handler's request
  std::size_t send(std::string_view data) { return socket().send(data); }
  /// socket().sendall(data).
  /// @throws ConnectionError, TimeoutError or SocketError, as Socket::sendall.
  /// @python socket.socket.sendall on the handler's request
  void sendall(std::string_view data) { socket().sendall(data); }

  /// The client's place under the server's access policy (its per-client connection count),
  /// held as long as the request: the servers set it; a forking server keeps it in the parent
  /// until the child ends.
  /// @{
  void keep_admission(Admission admission) noexcept { admission_ = std::move(admission); }
  Admission take_admission() noexcept { return std::move(admission_); }
  /// @}

 private:
  Socket connection_;
  Socket* server_socket_ = nullptr;
  std::string packet_;
  Admission admission_;
  std::optional<Timeout> idle_;
};

/// Python's RequestHandlerClass: called once per request, in the thread or process that handles
/// it. handler<H>() in handlers.hpp makes one from a handler class. A threading server calls it
/// from many threads at once.
/// @python socketserver.BaseServer.RequestHandlerClass
using RequestHandlerFactory = std::function<void(Request&, const Address&, BaseServer&)>;

/// The serving loop and the request hooks, with Python's names and call graph. Subclass a
/// concrete server (TCPServer, UDPServer, ...) rather than this. The hooks, as in Python
/// (handle_request() is the top-level call for one request):
///
/// ```
///   serve_forever / handle_request
///     -> get_request -> admit_peer -> admit_request -> verify_request -> process_request
///          process_request -> finish_request (runs the handler) -> shutdown_request
///                                                   shutdown_request -> close_request
///     on a std::exception from process_request: handle_error, then shutdown_request
///     on a failure of get_request: handle_accept_error
///   serve_forever also calls service_actions once per loop iteration.
/// ```
///
/// Errors: a handler's std::exception reaches handle_error() and the server goes on; a
/// TimeoutError or a peer gone is counted and logged instead; anything else closes the request
/// and propagates out of serve_forever() (Python's bare except + re-raise).
/// @threadsafety shutdown() and notify_capacity() are safe from any thread, a handler included;
/// everything else belongs to the thread that serves. Neither copyable nor movable.
/// @python socketserver.BaseServer
class BaseServer {
 public:
  /// Stores the address and the handler; binds nothing.
  /// @throws SocketError when the wake-up eventfd cannot be created.
  BaseServer(Address server_address, RequestHandlerFactory handler);
  /// Not copyable: handler threads refer to the server.
  /// @{
  BaseServer(const BaseServer&) = delete;
  BaseServer& operator=(const BaseServer&) = delete;
  /// @}
  /// Releases the wake-up descriptor. The derived servers' destructors close them (Python's
  /// `with` block); stop serve_forever() with shutdown() first.
  virtual ~BaseServer();

  /// Handles requests until shutdown() is asked. Calls service_actions() after each request and
  /// at least every poll_interval (Python's parameter; shutdown() does not wait for it, it wakes
  /// the loop at once).
  /// @throws std::logic_error when the server is already serving.
  /// @throws SocketError when the loop's wait fails; what a handler throws that is not a
  ///         std::exception passes through.
  /// @python socketserver.BaseServer.serve_forever
  void serve_forever(std::chrono::duration<double> poll_interval = std::chrono::milliseconds(500));
  /// Asks serve_forever() to stop, wakes it, and waits until it has returned, unless called
  /// from the serving thread itself (a handler of a synchronous server): then it only asks, and
  /// the loop ends after the current request. Never deadlocks; returns at once when nothing is
  /// serving (a serve_forever() that starts later returns immediately, as in Python).
  /// @threadsafety Safe from any thread.
  /// @python socketserver.BaseServer.shutdown
  void shutdown();
  /// Waits for and handles one request; after `timeout` (if set) without one, calls and returns
  /// through handle_timeout(). Errors are handled as in serve_forever().
  /// @throws SocketError when the wait fails.
  /// @python socketserver.BaseServer.handle_request
  void handle_request();
  /// Releases the server's resources. Idempotent. May be extended (call Base::server_close()).
  /// @python socketserver.BaseServer.server_close
  virtual void server_close() {}
  /// The listening (or datagram) socket's descriptor.
  /// @python socketserver.BaseServer.fileno
  virtual int fileno() const noexcept = 0;
  /// Python's bind_and_activate=True path: server_bind() then server_activate(); on failure the
  /// server is closed and the error rethrown.
  /// @throws SocketError from server_bind() or server_activate() (EADDRINUSE, EACCES...), or
  ///         whatever an override of them throws.
  void bind_and_activate();
  /// True while serve_forever() runs.
  /// @threadsafety Safe from any thread.
  bool serving() const;

  // The hooks below follow the call graph in the class comment.

  /// Binds the socket; does nothing at this level. May be overridden.
  /// @python socketserver.BaseServer.server_bind
  virtual void server_bind() {}
  /// Starts listening; does nothing at this level. May be overridden.
  /// @python socketserver.BaseServer.server_activate
  virtual void server_activate() {}
  /// Returns the next request and its client address. May be overridden.
  /// @throws std::system_error on failure; the loop passes it to handle_accept_error().
  /// @python socketserver.BaseServer.get_request
  virtual std::pair<Request, Address> get_request() = 0;
  /// Return false to refuse the request (it is then shut down and counted as rejected).
  /// Default: true. May be overridden.
  /// @python socketserver.BaseServer.verify_request
  virtual bool verify_request(Request& request, const Address& client_address);
  /// The server's own admission rules, checked right after accept and before verify_request
  /// (so an override of verify_request cannot skip them): false closes the request at once,
  /// before any byte is read or any thread or child is spent on it; the rule logs and counts.
  /// Default: true; TCPServer checks allowed_credentials. May be extended (call Base::).
  virtual bool admit_peer(Request& request);
  /// Default: finish_request(), then shutdown_request(); the mixins hand the request to a
  /// thread or a child instead. May be overridden.
  /// @python socketserver.BaseServer.process_request
  virtual void process_request(Request& request, const Address& client_address);
  /// Runs the handler (RequestHandlerClass). May be overridden.
  /// @python socketserver.BaseServer.finish_request
  virtual void finish_request(Request& request, const Address& client_address);
  /// Ends the request; default: close_request(). May be overridden.
  /// @python socketserver.BaseServer.shutdown_request
  virtual void shutdown_request(Request& request);
  /// Closes the request; does nothing at this level. May be overridden.
  /// @python socketserver.BaseServer.close_request
  virtual void close_request(Request& request);
  /// Called with the exception a handler threw. Default: prints a banner with the client address
  /// and the error to stderr, as Python's prints the traceback. May be overridden; an exception
  /// it throws is reported and dropped.
  /// @python socketserver.BaseServer.handle_error
  virtual void handle_error(Request& request, const Address& client_address,
                            std::exception_ptr error);
  /// Called by handle_request() when `timeout` passed without a request. Does nothing here.
  /// @python socketserver.BaseServer.handle_timeout
  virtual void handle_timeout() {}
  /// Called by serve_forever() once per loop iteration. Does nothing here; ForkingMixIn reaps
  /// its children in it.
  /// @python socketserver.BaseServer.service_actions
  virtual void service_actions() {}
  /// Called when get_request() fails (not in Python, where the error vanishes). Default: retries
  /// quietly after ECONNABORTED/EINTR/EAGAIN, backs off after EMFILE/ENFILE/ENOBUFS/ENOMEM (5 ms
  /// doubling to 1 s, woken early by shutdown), and logs anything else. May be overridden.
  virtual void handle_accept_error(const std::system_error& error);

  // --- Attributes ------------------------------------------------------------------------------
  /// The address the server listens on; after binding, the bound address (port 0 resolved).
  /// @python socketserver.BaseServer.server_address
  Address server_address;
  /// handle_request()'s timeout; nullopt waits forever. serve_forever() ignores it.
  /// @python socketserver.BaseServer.timeout
  Timeout timeout;
  /// The handler factory, called once per request.
  /// @python socketserver.BaseServer.RequestHandlerClass
  RequestHandlerFactory RequestHandlerClass;
  /// How many requests may be handled at once (threading and thread-pool servers; a sync server
  /// handles one, a forking one max_children). At the limit the server stops accepting until one
  /// ends: new connections wait in the kernel's backlog, nothing is dropped.
  std::size_t max_connections = 1024;
  /// How long server_close() lets running requests finish before it cuts their connections
  /// (threads) or sends SIGTERM (children). nullopt: wait as long as they take (Python).
  Timeout shutdown_grace;
  /// The server's counters, updated from any thread (stats.hpp).
  ServerStats stats;
  /// Who may connect (access/access_policy.hpp): address rules and per-client limits, checked
  /// right after accept (before verify_request, before any thread or child is spent), and the
  /// peers whose PROXY headers are believed. nullptr: everyone, as in Python.
  std::shared_ptr<AccessPolicy> access_policy;

 protected:
  /// Consults access_policy for a request just accepted: true to go on (the request keeps its
  /// Admission), false when it was refused (counted and logged; the caller closes it). A server
  /// that reads PROXY headers checks only the connecting peer here, and the real client later.
  virtual bool admit_request(Request& request, const Address& client_address);
  /// Sleeps up to `duration` unless shutdown() wakes it first.
  void wait_for_wakeup(std::chrono::nanoseconds duration) const noexcept;
  /// True while the server may not take another request; serve_forever() then stops accepting
  /// (the listening socket is not watched) until notify_capacity() or the next poll tick.
  virtual bool at_capacity() { return false; }
  /// Wakes serve_forever() to look at at_capacity() again.
  /// @threadsafety Safe from any thread.
  void notify_capacity() const noexcept { wake(); }
  /// The exception boundary of one request handled off the serving thread (a worker thread or a
  /// forked child): finish_request(), an exception to handle_error() (a TimeoutError is counted
  /// and logged instead), then shutdown_request(). Never throws.
  void run_request(Request& request, const Address& client_address) noexcept;
  /// The part of the boundary both paths share: reports the exception being handled (call it
  /// from a catch block).
  void report_request_error(Request& request, const Address& client_address) noexcept;

 private:
  void handle_request_noblock();
  void wake() const noexcept;
  void drain_wakeup() const noexcept;

  mutable std::mutex mutex_;
  std::condition_variable stopped_;
  bool serving_ = false;
  bool shutdown_request_ = false;
  std::thread::id serving_thread_;
  int wakeup_fd_ = -1;  // eventfd: shutdown() makes it readable to end the wait in select()
  std::chrono::milliseconds accept_backoff_{0};
};

/// A stream server on an IPv4 or IPv6 address (and the base of the other three), owning its
/// listening `socket`. Every request's connection gets the timeouts and dead-peer detection
/// below; TLS, the PROXY protocol and the Unix credential checks are attributes too.
/// @threadsafety As BaseServer; set_ssl_context() is also safe from any thread.
/// @python socketserver.TCPServer
class TCPServer : public BaseServer {
 public:
  /// Creates the socket; with bind_and_activate, binds and listens (a failure closes the socket
  /// and throws). To set options first (allow_reuse_address, ...), pass false, set them, then call
  /// bind_and_activate(). A subclass that overrides server_bind/server_activate must do the same
  /// (or use make_server<T>()), because a C++ constructor cannot reach an override.
  /// @throws SocketError when the socket cannot be created, bound or put to listen.
  /// @throws std::invalid_argument for allowed_credentials on a socket that is not a Unix stream.
  /// @python socketserver.TCPServer(server_address, RequestHandlerClass, bind_and_activate)
  TCPServer(const Address& address, RequestHandlerFactory handler, bool bind_and_activate = true);
  /// server_close()'s work: removes the Unix socket file this server created, closes the socket.
  ~TCPServer() override;

  /// socket.fileno().
  /// @python socketserver.TCPServer.fileno
  int fileno() const noexcept override { return socket.fileno(); }
  /// Sets SO_REUSEADDR/SO_REUSEPORT as asked (inet addresses), removes a stale Unix socket
  /// file, binds, records the bound address in server_address, and applies
  /// socket_file_permissions. May be extended.
  /// @throws SocketError when a step fails (EADDRINUSE for an address or live Unix socket in use).
  /// @throws std::invalid_argument for allowed_credentials on a socket that is not a Unix stream.
  /// @python socketserver.TCPServer.server_bind
  void server_bind() override;
  /// listen(request_queue_size), then the listener is made non-blocking and the dead-peer
  /// detection options are set. May be extended.
  /// @throws SocketError when a step fails.
  /// @python socketserver.TCPServer.server_activate
  void server_activate() override;
  /// Closes the socket and removes the Unix socket file this server created (unless something
  /// replaced it). Idempotent. May be extended (call TCPServer::server_close()).
  /// @python socketserver.TCPServer.server_close
  void server_close() override;
  /// accept(), with connection_timeout set on the connection and idle_timeout on the request.
  /// @throws SocketError (EAGAIN when a readiness report went stale, EMFILE, ...).
  /// @python socketserver.TCPServer.get_request
  std::pair<Request, Address> get_request() override;
  /// Checks allowed_credentials (stream requests).
  bool admit_peer(Request& request) override;
  /// Reads the PROXY header first when proxy_protocol is on, and runs the TLS handshake when a
  /// context is set; a bad header or a failed handshake ends the request here (logged,
  /// counted). Then runs the handler.
  void finish_request(Request& request, const Address& client_address) override;
  /// shutdown(SHUT_WR), discard unread input already received (closing with unread input would
  /// make the kernel reset the connection and could destroy our reply), then close_request().
  /// Over TLS: close_notify, then the same, waiting up to ssl_shutdown_timeout. Never throws.
  /// @python socketserver.TCPServer.shutdown_request
  void shutdown_request(Request& request) override;
  /// Closes the request's connection.
  /// @python socketserver.TCPServer.close_request
  void close_request(Request& request) override;

  // --- Attributes ------------------------------------------------------------------------------
  /// Taken from server_address (Python's class attribute).
  /// @python socketserver.TCPServer.address_family
  int address_family;
  /// SOCK_STREAM, or SOCK_DGRAM for the datagram servers.
  /// @python socketserver.TCPServer.socket_type
  int socket_type;
  /// The listen backlog. Python used 5 until 3.15; a burst of connects then fails. SOMAXCONN is
  /// what the kernel caps it to anyway.
  /// @python socketserver.TCPServer.request_queue_size
  int request_queue_size = SOMAXCONN;
  /// SO_REUSEADDR before bind (AF_INET/AF_INET6 only). Stream servers: true (Python's
  /// TCPServer: false), so a restarted server binds while the last run's connections sit in
  /// TIME_WAIT instead of failing with "Address already in use" for a minute; on Linux it never
  /// lets a second listener take the address. Python's own HTTPServer sets it, and so do the
  /// event-loop servers. Datagram servers: false, as in Python (on UDP it would let another socket
  /// bind the same port and take datagrams). docs/python-mapping.md.
  /// @python socketserver.TCPServer.allow_reuse_address
  bool allow_reuse_address;
  /// SO_REUSEPORT before bind; applied to AF_INET/AF_INET6 only, as in Python.
  /// @python socketserver.TCPServer.allow_reuse_port
  bool allow_reuse_port = false;
  /// The listening socket (the datagram socket, for the datagram servers).
  /// @python socketserver.TCPServer.socket
  Socket socket;
  /// Timeouts of an accepted stream connection (docs/adr/0006-timeout-defaults.md). Python has
  /// neither; nullopt for both restores that, and the bare blocking path.
  ///
  /// connection_timeout: the stalled-request timeout. Once a request has started arriving, every
  /// wait (each blocking call, and each buffered read such as rfile.readline() as a whole) and
  /// every write must finish within it, so a client that stalls mid-request, trickles one byte a
  /// second or stops reading replies is cut off (TimeoutError, counted in stats.timed_out).
  /// Default 30 s (nginx's per-phase timeouts are 60 s; `sockserv serve --timeout`).
  Timeout connection_timeout = std::chrono::seconds(30);
  /// idle_timeout: how long a connection may wait for its next request with nothing buffered
  /// (a read of rfile, or request.recv(), that finds no unread bytes). Default nullopt: idle
  /// connections stay open, as Python, Redis and Go's http.Server keep them (connection pools
  /// hold idle connections for minutes; dead peers are found by `keepalive` below).
  ///
  /// A handler's own `timeout` (Python's attribute) overrides both: every wait is bounded by it.
  Timeout idle_timeout;
  /// Dead-peer detection for TCP, set on the listening socket and so on every connection:
  /// keepalive probes after `idle` of silence (a vanished peer is found ~idle + interval x count
  /// later), and TCP_USER_TIMEOUT, the longest sent data may stay unacknowledged. nullopt: off.
  /// @{
  std::optional<KeepAlive> keepalive = KeepAlive{};
  std::optional<std::chrono::milliseconds> tcp_user_timeout = std::chrono::seconds(60);
  /// @}
  /// How long a new TCP connection may stay silent before the server spends anything on it:
  /// the kernel keeps it out of accept() until its first bytes arrive (Linux TCP_DEFER_ACCEPT),
  /// for this long rounded up to the SYN-ACK retransmission schedule (1, 3, 7, 15, 31 s...);
  /// one still silent then is closed at accept, before a thread or child is spent (counted in
  /// stats.timed_out). So idle connections cannot occupy a forking server's children. Only for
  /// protocols where the client speaks first (not daytime, SMTP, ...). Set it before
  /// bind_and_activate(), like keepalive. nullopt: off (Python).
  Timeout first_bytes_timeout;
  /// Expect a PROXY protocol v1/v2 header (HAProxy, nginx `proxy_protocol on`) at the start of
  /// every connection: client_address becomes the real client's. A missing or malformed header
  /// closes that connection only (logged, counted in stats.rejected).
  bool proxy_protocol = false;
  /// Unix stream servers: which peers are served, by their SO_PEERCRED uid or gid (empty: all).
  /// Others are closed right after accept, logged, counted in stats.denied_credentials. Set
  /// before bind_and_activate(), which refuses a non-empty list on another kind of socket.
  CredentialAllowList allowed_credentials;
  /// Unix path servers: the socket file's mode and owner, set by server_bind() after bind and
  /// before listen, so no client connects while the file has the default mode.
  SocketFilePermissions socket_file_permissions;

  /// Takes an already bound, listening socket (systemd socket activation, inetd) instead of
  /// binding: construct with bind_and_activate = false, then call this. server_address,
  /// address_family and socket_type are taken from it.
  /// @throws SocketError when the socket's name or mode cannot be read or set.
  /// @throws std::invalid_argument for allowed_credentials on a socket that is not a Unix stream.
  void adopt_socket(Socket listening);

  // --- TLS (docs/adr/0003-transport-model.md) --------------------------------------------------
  /// With a server context, every connection is TLS, and the handler is unchanged: rfile, wfile
  /// and request.recv/sendall read and write plaintext. The handshake runs in the request's own
  /// thread or child process, never on the accept path, after the PROXY header if any, and must
  /// finish within ssl_handshake_timeout as a whole (a client that sends a byte a second is cut
  /// at the deadline). A failed handshake closes that connection only (logged, counted in
  /// stats.tls_failures). nullptr turns TLS off for new connections.
  /// @throws std::invalid_argument on a datagram server (UDPServer, UnixDatagramServer).
  /// @threadsafety Safe from any thread at any time (reload): connections that start afterwards
  /// use the new context, running ones keep theirs.
  /// @python wrapping the listening socket with SSLContext.wrap_socket(server_side=True)
  void set_ssl_context(std::shared_ptr<const SSLContext> context);
  /// The current server context; nullptr when TLS is off.
  /// @threadsafety Safe from any thread.
  std::shared_ptr<const SSLContext> ssl_context() const;
  /// The whole handshake's deadline, from the first byte after the PROXY header.
  std::chrono::nanoseconds ssl_handshake_timeout = std::chrono::seconds(10);
  /// How long the close waits for the peer's close_notify after sending ours.
  std::chrono::nanoseconds ssl_shutdown_timeout = std::chrono::seconds(2);

 protected:
  /// For UDPServer: a server on a socket of `type`, not bound.
  /// @throws SocketError when the socket cannot be created.
  TCPServer(const Address& address, RequestHandlerFactory handler, int type);
  /// With proxy_protocol, only whether the peer may send a PROXY header: finish_request()
  /// applies the rules and limits to the client the header names.
  bool admit_request(Request& request, const Address& client_address) override;
  /// Attaches TLS to the request and runs the handshake under its deadline; false (logged,
  /// counted) when it failed and the connection must be closed.
  bool start_tls(Request& request, const Address& client_address, const SSLContext& context);

 private:
  // Unix socket file policy: a stale file (nobody listening) is removed before bind; the file
  // this server created is removed by server_close(), unless something replaced it.
  // Keepalive and TCP_USER_TIMEOUT on the listening socket (inherited by connections).
  void apply_dead_peer_detection();
  struct UnixSocketFile;
  std::unique_ptr<UnixSocketFile> socket_file_;
  SSLContextSlot ssl_context_;
};

/// A datagram server: each datagram is a request, answered through the server's own socket.
/// @threadsafety As BaseServer.
/// @python socketserver.UDPServer
class UDPServer : public TCPServer {
 public:
  /// Creates the datagram socket; with bind_and_activate, binds it.
  /// @throws SocketError when the socket cannot be created or bound.
  /// @python socketserver.UDPServer(server_address, RequestHandlerClass, bind_and_activate)
  UDPServer(const Address& address, RequestHandlerFactory handler, bool bind_and_activate = true);

  /// Does nothing: no listen() for datagrams.
  void server_activate() override {}  // no listen() for datagrams
  /// One datagram. One larger than max_packet_size is dropped and reported (errc::
  /// datagram_truncated through handle_accept_error), never handed on cut short. It is received
  /// into a buffer the server keeps, and the request gets a copy of its bytes only.
  /// @throws SocketError with errc::datagram_truncated, or the receive's errno (EAGAIN...).
  /// @python socketserver.UDPServer.get_request
  std::pair<Request, Address> get_request() override;
  /// close_request(): nothing to shut down on a shared socket.
  /// @python socketserver.UDPServer.shutdown_request
  void shutdown_request(Request& request) override { close_request(request); }
  /// Does nothing: the server's socket is shared.
  /// @python socketserver.UDPServer.close_request
  void close_request(Request&) override {}  // the server's socket is shared: nothing to close

  /// 65,507: the largest UDP payload over IPv4 (65,535 less the 8-byte UDP and 20-byte IPv4
  /// headers), so every datagram IPv4 can carry is served, as by aio::AsyncUDPServer. Python's
  /// is 8192 (docs/python-mapping.md).
  /// @python socketserver.UDPServer.max_packet_size
  std::size_t max_packet_size = 65507;

 private:
  std::vector<char> packet_buffer_;  // get_request() receives here (the serving thread only)
};

/// TCPServer on a Unix socket path (or abstract name): Address::unix_path / Address::abstract.
/// A stale socket file is replaced at bind; the file is removed by server_close().
/// @python socketserver.UnixStreamServer
class UnixStreamServer : public TCPServer {
 public:
  /// As TCPServer's constructor.
  /// @throws std::invalid_argument when `address` is not a Unix address.
  /// @throws SocketError when the socket cannot be created, bound or put to listen (EADDRINUSE:
  ///         a live server has the path).
  UnixStreamServer(const Address& address, RequestHandlerFactory handler,
                   bool bind_and_activate = true);
};

/// UDPServer on a Unix socket path (or abstract name).
/// @python socketserver.UnixDatagramServer
class UnixDatagramServer : public UDPServer {
 public:
  /// As UDPServer's constructor.
  /// @throws std::invalid_argument when `address` is not a Unix address.
  /// @throws SocketError when the socket cannot be created or bound.
  UnixDatagramServer(const Address& address, RequestHandlerFactory handler,
                     bool bind_and_activate = true);
};

/// Constructs a Server without binding, then calls bind_and_activate() so that overrides of
/// server_bind/server_activate run (the C++ counterpart of Python's constructor behaviour).
/// `args` follow the bind_and_activate argument of Server's constructor.
/// Throws what Server's constructor and bind_and_activate() throw.
template <class Server, class... Args>
std::unique_ptr<Server> make_server(const Address& address, RequestHandlerFactory handler,
                                    Args&&... args) {
  auto server =
      std::make_unique<Server>(address, std::move(handler), false, std::forward<Args>(args)...);
  server->bind_and_activate();
  return server;
}

}  // namespace sockserv
