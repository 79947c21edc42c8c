// SPDX-License-Identifier: MIT
// The free functions that make ready-to-use sockets: socketpair, create_connection,
// create_server (Python's module-level helpers of the same names).
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "sys/fd.hpp"

namespace sockserv {

std::pair<Socket, Socket> socketpair(int family, int type, int protocol) {
  int fds[2];
  if (::socketpair(family, type | SOCK_CLOEXEC, protocol, fds) != 0) throw_errno("socketpair");
  // adopt() cannot fail, so neither descriptor can leak.
  return {Socket::adopt(fds[0], family, type), Socket::adopt(fds[1], family, type)};
}

Socket create_connection(const Address& address, Timeout timeout) {
  Socket sock(address.family(), SOCK_STREAM);
  if (timeout) sock.settimeout(timeout);
  sock.connect(address);
  return sock;
}

Socket create_connection(std::string_view host, std::uint16_t port, Timeout timeout) {
  // Try each address the name resolves to, in the resolver's order (IPv6 and IPv4 for
  // "localhost"), keeping the first error to report if none answers.
  std::exception_ptr first_error;
  for (const auto& info : getaddrinfo(host, std::to_string(port), AF_UNSPEC, SOCK_STREAM)) {
    try {
      return create_connection(info.address, timeout);
    } catch (const SocketError&) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  std::rethrow_exception(first_error);  // getaddrinfo never returns an empty list
}

Socket create_server(const Address& address, const ServerOptions& options) {
  Socket sock(address.family(), SOCK_STREAM);
  if (address.is_inet()) {
    if (options.reuse_address) sock.set_reuse_address(true);
    if (options.reuse_port) sock.set_reuse_port(true);
  }
  if (address.family() == AF_INET6) sock.set_ipv6_only(!options.dualstack_ipv6);
  if (address.is_unix() && !address.is_abstract()) {
    sys::remove_stale_unix_socket(address.path().c_str(), SOCK_STREAM);
  }
  sock.bind(address);
  sock.listen(options.backlog);
  return sock;
}

}  // namespace sockserv
