// SPDX-License-Identifier: MIT
/// @file
/// Umbrella header of the sockets layer: Address, Buffer, byte order, errors, framing, Selector,
/// Socket and SocketFile. The servers (server.hpp, handlers.hpp, mixins.hpp), the event loop
/// (aio/) and TLS (tls/) have headers of their own.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/buffer.hpp>
#include <sockserv/byteorder.hpp>
#include <sockserv/error.hpp>
#include <sockserv/framing.hpp>
#include <sockserv/selector.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>

/// @namespace sockserv
/// Python's socketserver and the Socket Programming HOWTO in C++20: the sockets layer (Socket,
/// Address, SocketFile, framing), the server layer (BaseServer, TCPServer, the mixins and
/// handlers) and what every layer shares (errors, logging, counters). docs/ARCHITECTURE.md, the
/// reference's front page, shows the layers; docs/python-mapping.md maps every Python name.
