// SPDX-License-Identifier: MIT
// Connection's TLS operations: the handshake, the polite close, and the TLS client.
#include <sockserv/aio/connection.hpp>
#include <sockserv/error.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include <poll.h>
#include <sys/socket.h>

namespace sockserv::aio {
namespace detail {

HandshakeOperation::HandshakeOperation(ConnectionState& c, bool reading) noexcept
    : IoOperation(c, reading) {
  perform = &HandshakeOperation::attempt;
}

bool HandshakeOperation::attempt(IoWaiter& self) {
  auto& op = static_cast<HandshakeOperation&>(self);
  short want = 0;
  std::error_code ec;
  if (sockserv::detail::tls_handshake_some(op.conn().sock, want, ec) >= 0) {
    op.done_ = true;
    // The handshake read what the kernel had: let the next read try rather than wait.
    op.conn().maybe_readable = true;
    return true;
  }
  if (ec) {
    op.sys_error_ = operation_error(ec);
    return true;
  }
  // Still waiting in the same direction: keep waiting; the other one: complete, and the
  // caller awaits a new operation that waits that way.
  return (want == POLLIN) != op.is_reader;
}

}  // namespace detail

Task<void> Connection::do_handshake() {
  for (bool reading = true;;) {
    const bool done = co_await detail::HandshakeOperation(*state_, reading);
    if (done) co_return;
    reading = !reading;
  }
}

Task<bool> Connection::aclose(std::chrono::nanoseconds timeout) {
  if (!state_ || !state_->sock) co_return false;
  const auto saved = state_->timeout;
  state_->timeout = timeout;  // each wait below; the read loop also stops at `until`
  bool peer_closed = false;
  try {
    if (auto* layer = state_->sock.layer()) {
      for (;;) {
        short want = 0;
        std::error_code ec;
        if (layer->close_some(want, ec) >= 0 || ec) break;
        co_await detail::WaitOperation(*state_, want == POLLIN);
      }
    }
    ::shutdown(state_->sock.fileno(), SHUT_WR);
    // Read and drop until the peer closes: a TLS peer's close_notify reads as 0, its FIN
    // without one as SSLEOFError (still a close).
    const auto until = std::chrono::steady_clock::now() + timeout;
    char sink[4096];
    while (std::chrono::steady_clock::now() < until) {
      try {
        if (co_await recv_into(sink) == 0) {
          peer_closed = true;
          break;
        }
      } catch (const SSLEOFError&) {
        peer_closed = true;
        break;
      }
    }
  } catch (const std::exception&) {
    // A timeout, a reset: the peer did not close in time; close anyway.
  }
  state_->timeout = saved;
  close();
  co_return peer_closed;
}

Task<Connection> open_connection(Address address, const SSLContext& context,
                                 std::string server_hostname, Timeout timeout) {
  Connection conn = co_await open_connection(address, timeout);
  attach_tls(conn.socket(), context, false, server_hostname);
  conn.settimeout(timeout);
  co_await conn.do_handshake();
  conn.settimeout(std::nullopt);
  co_return conn;
}

}  // namespace sockserv::aio
