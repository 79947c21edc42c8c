// SPDX-License-Identifier: MIT
// Socket's typed option helpers: thin, named wrappers over setsockopt(2)/getsockopt(2).
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>

namespace sockserv {

void Socket::setsockopt(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) {
    throw_errno("setsockopt", "option " + std::to_string(level) + "/" + std::to_string(name));
  }
}

int Socket::getsockopt(int level, int name) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) != 0) {
    throw_errno("getsockopt", "option " + std::to_string(level) + "/" + std::to_string(name));
  }
  return value;
}

void Socket::set_reuse_address(bool on) { setsockopt(SOL_SOCKET, SO_REUSEADDR, on); }
void Socket::set_reuse_port(bool on) { setsockopt(SOL_SOCKET, SO_REUSEPORT, on); }
void Socket::set_nodelay(bool on) { setsockopt(IPPROTO_TCP, TCP_NODELAY, on); }
bool Socket::get_nodelay() const { return getsockopt(IPPROTO_TCP, TCP_NODELAY) != 0; }
void Socket::set_keepalive(bool on) { setsockopt(SOL_SOCKET, SO_KEEPALIVE, on); }

void Socket::set_keepalive(const KeepAlive& probing) {
  set_keepalive(true);
  setsockopt(IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(probing.idle.count()));
  setsockopt(IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(probing.interval.count()));
  setsockopt(IPPROTO_TCP, TCP_KEEPCNT, probing.count);
}

void Socket::set_user_timeout(std::chrono::milliseconds timeout) {
  setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(timeout.count()));
}

void Socket::set_linger(std::optional<std::chrono::seconds> linger) {
  ::linger value{linger.has_value() ? 1 : 0, linger ? static_cast<int>(linger->count()) : 0};
  if (::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &value, sizeof value) != 0) {
    throw_errno("setsockopt SO_LINGER");
  }
}

void Socket::set_send_buffer_size(int bytes) { setsockopt(SOL_SOCKET, SO_SNDBUF, bytes); }
void Socket::set_recv_buffer_size(int bytes) { setsockopt(SOL_SOCKET, SO_RCVBUF, bytes); }
int Socket::get_send_buffer_size() const { return getsockopt(SOL_SOCKET, SO_SNDBUF); }
int Socket::get_recv_buffer_size() const { return getsockopt(SOL_SOCKET, SO_RCVBUF); }
void Socket::set_ipv6_only(bool on) { setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, on); }

std::error_code Socket::get_error() const {
  return {getsockopt(SOL_SOCKET, SO_ERROR), std::generic_category()};
}

}  // namespace sockserv
