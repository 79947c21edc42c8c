// SPDX-License-Identifier: MIT
// The built-in handlers as coroutines: the same behaviour as builtin_handlers.cpp, for
// `sockserv serve --mode async`.
#include "builtin_handlers.hpp"
#include "tls_options.hpp"

#include <stdexcept>
#include <string>

namespace sockserv::tool {
namespace {

using aio::Connection;
using aio::Datagram;
using aio::Task;

Task<void> upper_stream(Connection conn) {
  for (std::string line; !(line = co_await conn.readline()).empty();) {
    co_await conn.sendall(upper(std::move(line)));
  }
}

Task<void> echo_stream(Connection conn) {
  // Zero copy: each chunk is received into a pooled buffer and sent from it.
  for (;;) {
    aio::BufferLease chunk = co_await conn.recv_lease();
    if (chunk.empty()) co_return;
    co_await conn.sendall(std::move(chunk));
  }
}

Task<void> discard_stream(Connection conn) {
  for (;;) {
    const aio::BufferLease chunk = co_await conn.recv_lease();
    if (chunk.empty()) co_return;
  }
}

Task<void> daytime_stream(Connection conn) { co_await conn.sendall(daytime()); }

Task<void> whoami_stream(Connection conn) {
  // Over a Unix socket the peer's credentials (SO_PEERCRED), else its address.
  const std::string me = (conn.socket().family() == AF_UNIX ? conn.peer_credentials().to_string()
                                                            : conn.peer_address().to_string()) +
                         "\n";
  while (!(co_await conn.readline()).empty()) co_await conn.sendall(me);
}

Task<void> tlsinfo_stream(Connection conn) {
  for (std::string line; !(line = co_await conn.readline()).empty();) {
    co_await conn.sendall(tls_info_line(conn.socket()));
  }
}

Task<void> whoami_datagram(Datagram d) {
  d.reply(d.address.to_string() + "\n");
  co_return;
}

Task<void> upper_datagram(Datagram d) {
  d.reply(upper(d.data));
  co_return;
}

Task<void> echo_datagram(Datagram d) {
  d.reply(d.data);
  co_return;
}

Task<void> discard_datagram(Datagram) { co_return; }

Task<void> daytime_datagram(Datagram d) {
  d.reply(daytime());
  co_return;
}

}  // namespace

aio::ConnectionHandler async_stream_handler(std::string_view name) {
  if (name == "upper") return upper_stream;
  if (name == "echo") return echo_stream;
  if (name == "discard") return discard_stream;
  if (name == "daytime") return daytime_stream;
  if (name == "whoami") return whoami_stream;
  if (name == "tlsinfo") return tlsinfo_stream;
  throw std::invalid_argument("unknown handler '" + std::string(name) + "'");
}

aio::DatagramHandler async_datagram_handler(std::string_view name) {
  if (name == "upper") return upper_datagram;
  if (name == "echo") return echo_datagram;
  if (name == "discard") return discard_datagram;
  if (name == "daytime") return daytime_datagram;
  if (name == "whoami") return whoami_datagram;
  throw std::invalid_argument("unknown handler '" + std::string(name) + "'");
}

}  // namespace sockserv::tool
