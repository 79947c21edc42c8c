// SPDX-License-Identifier: MIT
// `sockserv bench --tls` and `--handshakes`: the client connection of the load engine, and the
// generator thread that opens a new connection per message.
#pragma once

#include "bench_load.hpp"

#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include <cstddef>

namespace sockserv::tool {

// Connects to `address` and, with --tls, runs the client handshake (resuming `session` when one
// is given), each step blocking under --connect-timeout; TCP_NODELAY is set before the handshake
// so no TLS flight waits for an ACK. The socket is returned with that timeout still set: the
// caller makes it non-blocking (the epoll loops) or keeps it (--handshakes). Throws.
Socket connect_client(const BenchOptions& options, const Address& address,
                      const SSLSession* session = nullptr);

// Turns OpenSSL's read-ahead on in the generator's client context, before its first use: one
// recv() then takes every record the socket holds, not a 5-byte header and then a body, so the
// generator costs the server's side less than it would (the load loop reads until OpenSSL holds
// nothing more). Does nothing in a build without TLS.
void enable_read_ahead(const SSLContext& context) noexcept;

// The body of one --handshakes generator thread, client `id` of options.connections: one
// connection set up before shared.ready (which proves the server answers and gives --resume its
// first session), then until the window ends (or its share of --messages is done): connect,
// handshake, send one --size message, read and check its echo, close (close_notify, FIN, and
// the server's close awaited for at most a second). A connection's latency runs from connect()
// to the echo's last byte. Errors go to shared.fail(); never throws.
WorkerResult run_handshake_worker(const BenchOptions& options, const Address& address,
                                  Shared& shared, std::size_t id) noexcept;

}  // namespace sockserv::tool
