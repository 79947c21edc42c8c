// SPDX-License-Identifier: MIT
// TCPServer, UDPServer and the Unix servers: the socket-owning servers of the framework.
#include <sockserv/error.hpp>
#include <sockserv/log.hpp>
#include <sockserv/proxy_protocol.hpp>
#include <sockserv/server.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include "access/credential_check.hpp"
#include "access/gate.hpp"
#include "sys/fd.hpp"
#include "sys/unix_file.hpp"
#include "tls/handshake_report.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stdexcept>

namespace sockserv {

struct TCPServer::UnixSocketFile : sys::OwnedSocketFile {};

TCPServer::TCPServer(const Address& address, RequestHandlerFactory handler, bool bind_and_activate)
    : TCPServer(address, std::move(handler), SOCK_STREAM) {
  if (bind_and_activate) this->bind_and_activate();
}

TCPServer::TCPServer(const Address& address, RequestHandlerFactory handler, int type)
    : BaseServer(address, std::move(handler)),
      address_family(address.family()),
      socket_type(type),
      allow_reuse_address(type == SOCK_STREAM),
      socket(address_family, type),
      socket_file_(std::make_unique<UnixSocketFile>()) {}

TCPServer::~TCPServer() { socket_file_->remove(); }

void TCPServer::server_bind() {
  if (server_address.is_inet()) {
    if (allow_reuse_address) socket.set_reuse_address(true);
    // Linux 6.12.9 refuses SO_REUSEPORT on other families, hence Python's family check.
    if (allow_reuse_port) socket.set_reuse_port(true);
  }
  detail::require_credential_support(server_address, socket_type, allowed_credentials);
  sys::OwnedSocketFile::prepare(server_address, socket_type);
  socket.bind(server_address);
  server_address = socket.getsockname();  // port 0 becomes the port the kernel chose
  socket_file_->remember(server_address);
  // Before listen(): until then a connect() is refused, so the default mode is never usable.
  set_socket_file_permissions(server_address, socket_file_permissions);
}

void TCPServer::server_close() {
  BaseServer::server_close();
  socket_file_->remove();
  socket.close();
}

std::string Request::recv(std::size_t bufsize) {
  if (!idle_ || is_datagram()) return socket().recv(bufsize);
  std::string out(bufsize, '\0');
  out.resize(socket().recv_into_idle(out, *idle_));
  return out;
}

std::pair<Request, Address> TCPServer::get_request() {
  auto [connection, address] = socket.accept();
  if (socket_type != SOCK_STREAM) return {Request(std::move(connection)), std::move(address)};
  if (connection_timeout) connection.settimeout(connection_timeout);
  Request request(std::move(connection));
  request.set_idle_timeout(idle_timeout);
  return {std::move(request), std::move(address)};
}

namespace {
// True when nothing (not even the peer's FIN) has arrived on a new connection yet.
bool silent(Socket& sock) {
  char byte = 0;
  const ssize_t n = ::recv(sock.fileno(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
}  // namespace

void TCPServer::server_activate() {
  socket.listen(request_queue_size);
  // A readiness report can go stale before accept() runs (the client reset meanwhile); a
  // non-blocking listener then fails with EAGAIN instead of blocking the whole loop.
  socket.setblocking(false);
  apply_dead_peer_detection();
}

void TCPServer::apply_dead_peer_detection() {
  // Accepted connections inherit these from the listening socket (Linux copies them on accept),
  // so they cost nothing per connection.
  if (!server_address.is_inet()) return;
  if (first_bytes_timeout) {
    const auto whole_seconds = std::chrono::ceil<std::chrono::seconds>(*first_bytes_timeout);
    socket.setsockopt(IPPROTO_TCP, TCP_DEFER_ACCEPT,
                      static_cast<int>(std::max<std::int64_t>(1, whole_seconds.count())));
  }
  if (keepalive) socket.set_keepalive(*keepalive);
  if (tcp_user_timeout) socket.set_user_timeout(*tcp_user_timeout);
}

void TCPServer::adopt_socket(Socket listening) {
  socket = std::move(listening);
  server_address = socket.getsockname();
  address_family = server_address.family();
  socket_type = socket.type();
  detail::require_credential_support(server_address, socket_type, allowed_credentials);
  if (socket_type == SOCK_STREAM) {
    socket.setblocking(false);
    apply_dead_peer_detection();
  }
}

bool TCPServer::admit_peer(Request& request) {
  if (request.is_datagram() || allowed_credentials.empty()) return true;
  return detail::admit_credentials(request.socket().fileno(), allowed_credentials, server_address,
                                   stats);
}

void TCPServer::finish_request(Request& request, const Address& client_address) {
  const auto context = request.is_datagram() ? nullptr : ssl_context();
  if ((!proxy_protocol && !context) || request.is_datagram()) {
    return BaseServer::finish_request(request, client_address);
  }
  Address client = client_address;
  if (proxy_protocol) {
    ProxyHeader header;
    try {
      header = read_proxy_header(request.socket());
    } catch (const SocketError& e) {
      // A missing or malformed header ends this connection only.
      ServerStats::add(stats.rejected);
      log(LogLevel::warning, "PROXY header from " + client_address.to_string() + ": " + e.what() +
                                 "; closing the connection");
      return;
    }
    if (!header.local) client = header.source;
    Admission admission = detail::admit_client(access_policy.get(), client, stats, server_address);
    if (!admission) return;
    request.keep_admission(std::move(admission));
  }
  // The PROXY header is plain text before the ClientHello: TLS starts after it.
  if (context && !start_tls(request, client, *context)) return;
  BaseServer::finish_request(request, client);
}

bool TCPServer::admit_request(Request& request, const Address& client_address) {
  if (first_bytes_timeout && !request.is_datagram() && server_address.is_inet() &&
      silent(request.socket())) {
    // TCP_DEFER_ACCEPT let it through only because its time ran out.
    ServerStats::add(stats.timed_out);
    log(LogLevel::info, "closing " + client_address.to_string() + ": nothing received within " +
                            "the first-bytes timeout");
    return false;
  }
  if (!proxy_protocol || request.is_datagram()) {
    return BaseServer::admit_request(request, client_address);
  }
  return detail::admit_proxy(access_policy.get(), client_address, stats, server_address);
}

void TCPServer::set_ssl_context(std::shared_ptr<const SSLContext> context) {
  if (context && socket_type != SOCK_STREAM) {
    throw std::invalid_argument("set_ssl_context: TLS needs a stream server, not a datagram one");
  }
  ssl_context_.set(std::move(context));
}

std::shared_ptr<const SSLContext> TCPServer::ssl_context() const { return ssl_context_.get(); }

bool TCPServer::start_tls(Request& request, const Address& client_address,
                          const SSLContext& context) {
  auto& sock = request.socket();
  try {
    // TLS 1.3 sends its session tickets right after the handshake: with Nagle on, the first
    // reply then waits for their ACK, which a client delays 40 ms. nginx sets it for TLS too.
    if (sock.family() == AF_INET || sock.family() == AF_INET6) sock.set_nodelay(true);
    attach_tls(sock, context, true);
    // One deadline for the whole handshake (the socket's own timeout still bounds each wait).
    const auto previous = sock.get_deadline();
    sock.set_deadline(std::chrono::steady_clock::now() + ssl_handshake_timeout);
    do_handshake(sock);
    sock.set_deadline(previous);
    ServerStats::add(stats.tls_handshakes);
    return true;
  } catch (const std::exception& e) {
    tls::report_handshake_failure(stats, client_address, e.what(),
                                  dynamic_cast<const TimeoutError*>(&e) != nullptr);
    return false;
  }
}

void TCPServer::shutdown_request(Request& request) {
  auto& connection = request.socket();
  if (const auto* tls = ssl_object(connection)) {
    if (tls->handshake_done()) {
      // close_notify, then the HOWTO's FIN and drain, waiting at most ssl_shutdown_timeout for
      // the peer's close_notify or FIN.
      connection.graceful_close(ssl_shutdown_timeout);
      return close_request(request);
    }
    connection.release_layer();  // a failed handshake: nothing to say in TLS, close plainly
  }
  if (connection) {
    // Explicitly shut down: close() alone may not send the FIN while another process (a forked
    // child) still holds the descriptor. ENOTCONN (the peer is gone) is not an error here.
    ::shutdown(connection.fileno(), SHUT_WR);
    char sink[4096];
    while (sys::retry_eintr(
               [&] { return ::recv(connection.fileno(), sink, sizeof sink, MSG_DONTWAIT); }) > 0) {
    }
  }
  close_request(request);
}

void TCPServer::close_request(Request& request) { request.socket().close(); }

UDPServer::UDPServer(const Address& address, RequestHandlerFactory handler, bool bind_and_activate)
    : TCPServer(address, std::move(handler), SOCK_DGRAM) {
  if (bind_and_activate) this->bind_and_activate();
}

std::pair<Request, Address> UDPServer::get_request() {
  // A buffer of max_packet_size for every datagram would cost an allocation and a 64 KiB
  // memset each; this one is kept, and the request copies only the datagram's bytes.
  if (packet_buffer_.size() != max_packet_size) packet_buffer_.resize(max_packet_size);
  std::error_code ec;
  // MSG_DONTWAIT: the socket stays blocking for handlers' replies, but a stale readiness report
  // must not block the loop.
  auto result = socket.recvfrom_into(packet_buffer_, ec, MSG_DONTWAIT);
  if (ec) throw_error(ec, "recvfrom", server_address.to_string());
  if (result.truncated) {
    throw_error(errc::datagram_truncated, "recvfrom",
                "from " + result.address.to_string() + ": datagram larger than max_packet_size (" +
                    std::to_string(max_packet_size) + " bytes), dropped");
  }
  return {Request(std::string(packet_buffer_.data(), result.size), socket), result.address};
}

namespace {

const Address& require_unix(const Address& address) {
  if (!address.is_unix()) {
    throw std::invalid_argument("a Unix server needs a Unix address, not " + address.to_string());
  }
  return address;
}

}  // namespace

UnixStreamServer::UnixStreamServer(const Address& address, RequestHandlerFactory handler,
                                   bool bind_and_activate)
    : TCPServer(require_unix(address), std::move(handler), bind_and_activate) {}

UnixDatagramServer::UnixDatagramServer(const Address& address, RequestHandlerFactory handler,
                                       bool bind_and_activate)
    : UDPServer(require_unix(address), std::move(handler), bind_and_activate) {}

}  // namespace sockserv
