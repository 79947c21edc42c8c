// SPDX-License-Identifier: MIT
// SSLSocket and wrap_socket: attaching the TLS layer to a Socket, and the calls that drive it.
#include <sockserv/error.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include "tls/tls_stream.hpp"

namespace sockserv {

SSLObject* ssl_object(const Socket& sock) noexcept {
  return dynamic_cast<SSLObject*>(sock.layer());
}

void attach_tls(Socket& sock, const SSLContext& context, bool server_side,
                const std::string& server_hostname, const SSLSession* session,
                std::string_view already_received) {
  if (!sock) throw std::invalid_argument("wrap_socket: the socket is closed");
  if (sock.layer() != nullptr) throw std::invalid_argument("wrap_socket: already wrapped");
  sock.set_layer(std::make_unique<tls::TlsStream>(context.impl(), sock.fileno(), server_side,
                                                  server_hostname, session, already_received));
}

int detail::tls_handshake_some(Socket& sock, short& want, std::error_code& ec) noexcept {
  auto* stream = dynamic_cast<tls::TlsStream*>(sock.layer());
  if (stream == nullptr) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return -1;
  }
  return stream->handshake_some(want, ec);
}

void do_handshake(Socket& sock) {
  if (dynamic_cast<tls::TlsStream*>(sock.layer()) == nullptr) {
    throw std::invalid_argument("do_handshake: not a TLS socket");
  }
  sock.drive_layer("do_handshake",
                   [](detail::StreamLayer& layer, short& want, std::error_code& ec) {
                     return static_cast<tls::TlsStream&>(layer).handshake_some(want, ec);
                   });
}

SSLSocket SSLContext::wrap_socket(Socket sock, bool server_side, const std::string& server_hostname,
                                  bool do_handshake_on_connect, const SSLSession* session) const {
  attach_tls(sock, *this, server_side, server_hostname, session);
  SSLSocket tls(std::move(sock));
  if (do_handshake_on_connect) tls.do_handshake();
  return tls;
}

void SSLSocket::do_handshake() { sockserv::do_handshake(*this); }

Socket SSLSocket::unwrap() {
  if (dynamic_cast<tls::TlsStream*>(layer()) == nullptr) {
    throw std::invalid_argument("unwrap: not a TLS socket");
  }
  drive_layer("unwrap", [](detail::StreamLayer& layer, short& want, std::error_code& ec) {
    return static_cast<tls::TlsStream&>(layer).unwrap_some(want, ec);
  });
  release_layer();
  return Socket(std::move(static_cast<Socket&>(*this)));
}

}  // namespace sockserv
