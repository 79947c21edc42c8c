// SPDX-License-Identifier: MIT
// The handlers `sockserv serve --handler NAME` offers, for stream and datagram servers.
#pragma once

#include <sockserv/aio/server.hpp>
#include <sockserv/server.hpp>

#include <string>
#include <string_view>

namespace sockserv::tool {

// upper: one upper-cased reply per line (per datagram) until EOF.
// echo: bytes back as they come until EOF (the datagram back).
// discard: reads and drops everything (RFC 863).
// daytime: the date and time, then close (RFC 867); a datagram gets it as the reply.
// whoami: the client's address (after PROXY protocol: the real client's), once per line; over a
//         Unix stream socket the peer's credentials instead, "pid=N uid=N gid=N".
// Throws std::invalid_argument for an unknown name.
RequestHandlerFactory builtin_handler(std::string_view name, bool datagram);

// The same handlers as coroutines, for the event-loop servers (--mode async).
aio::ConnectionHandler async_stream_handler(std::string_view name);
aio::DatagramHandler async_datagram_handler(std::string_view name);

// Shared by both: the text transformations.
std::string upper(std::string text);
std::string daytime();

}  // namespace sockserv::tool
