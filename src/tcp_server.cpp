// SPDX-License-Identifier: MIT
// TCPServer, UDPServer and the Unix servers: the socket-owning servers of the framework.
#include <sockserv/error.hpp>
#include <sockserv/log.hpp>
#include <sockserv/proxy_protocol.hpp>
#include <sockserv/server.hpp>

#include "sys/fd.hpp"
#include "sys/unix_file.hpp"

#include <unistd.h>

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
      socket(address_family, type),
      socket_file_(std::make_unique<UnixSocketFile>()) {}

TCPServer::~TCPServer() { socket_file_->remove(); }

void TCPServer::server_bind() {
  if (server_address.is_inet()) {
    if (allow_reuse_address) socket.set_reuse_address(true);
    // Linux 6.12.9 refuses SO_REUSEPORT on other families, hence Python's family check.
    if (allow_reuse_port) socket.set_reuse_port(true);
  }
  sys::OwnedSocketFile::prepare(server_address, socket_type);
  socket.bind(server_address);
  server_address = socket.getsockname();  // port 0 becomes the port the kernel chose
  socket_file_->remember(server_address);
}

void TCPServer::server_close() {
  BaseServer::server_close();
  socket_file_->remove();
  socket.close();
}

std::pair<Request, Address> TCPServer::get_request() {
  auto [connection, address] = socket.accept();
  if (connection_timeout && socket_type == SOCK_STREAM) connection.settimeout(connection_timeout);
  return {Request(std::move(connection)), std::move(address)};
}

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
  if (keepalive) socket.set_keepalive(*keepalive);
  if (tcp_user_timeout) socket.set_user_timeout(*tcp_user_timeout);
}

void TCPServer::adopt_socket(Socket listening) {
  socket = std::move(listening);
  server_address = socket.getsockname();
  address_family = server_address.family();
  socket_type = socket.type();
  if (socket_type == SOCK_STREAM) {
    socket.setblocking(false);
    apply_dead_peer_detection();
  }
}

void TCPServer::finish_request(Request& request, const Address& client_address) {
  if (!proxy_protocol || request.is_datagram()) {
    return BaseServer::finish_request(request, client_address);
  }
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
  BaseServer::finish_request(request, header.local ? client_address : header.source);
}

void TCPServer::shutdown_request(Request& request) {
  auto& connection = request.socket();
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
  std::string packet(max_packet_size, '\0');
  std::error_code ec;
  // MSG_DONTWAIT: the socket stays blocking for handlers' replies, but a stale readiness report
  // must not block the loop.
  auto result = socket.recvfrom_into(packet, ec, MSG_DONTWAIT);
  if (ec) throw_error(ec, "recvfrom", server_address.to_string());
  if (result.truncated) {
    throw_error(errc::datagram_truncated, "recvfrom",
                "from " + result.address.to_string() + ": datagram larger than max_packet_size (" +
                    std::to_string(max_packet_size) + " bytes), dropped");
  }
  packet.resize(result.size);
  return {Request(std::move(packet), socket), std::move(result.address)};
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
