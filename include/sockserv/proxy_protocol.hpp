// SPDX-License-Identifier: MIT
/// @file
/// The PROXY protocol, versions 1 (text) and 2 (binary): the header a load balancer (HAProxy,
/// nginx `proxy_protocol on`, cloud balancers) sends first on each connection to tell the server
/// who the real client is.
///
/// ```
///   v1: "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n"   (at most 107 bytes)
///   v2: 12-byte signature, version/command, family, length, addresses, then TLVs
/// ```
///
/// parse_proxy_header() is incremental: give it the bytes received so far; it says "need more",
/// returns the header and its size, or throws SocketError(errc::malformed_frame) for anything that
/// is not a valid header - including a connection that did not send one at all, which a server
/// expecting the protocol must refuse. Headers longer than max_size are refused too.
///
/// Python has no PROXY protocol support; the servers read the header when their
/// `proxy_protocol` attribute is set (TCPServer::proxy_protocol).
#pragma once

#include <sockserv/address.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sockserv {

class Socket;

/// One PROXY header: who the real client is, as the balancer saw it.
struct ProxyHeader {
  int version = 0;  ///< 1 or 2
  /// v2 LOCAL or v1 UNKNOWN: the balancer's own connection (a health check); no addresses.
  bool local = false;
  Address source;                                          ///< the real client
  Address destination;                                     ///< the address the client connected to
  std::vector<std::pair<std::uint8_t, std::string>> tlvs;  ///< v2 type-length-value extensions
};

/// The longest v1 header the specification allows, its final CRLF included.
inline constexpr std::size_t proxy_v1_max = 107;
/// The default limit on a header's size (v2 headers with TLVs may be long).
inline constexpr std::size_t proxy_default_max = 4096;

/// What parse_proxy_header() found: the header and how many bytes it took.
struct ParsedProxyHeader {
  ProxyHeader header;    ///< the parsed header
  std::size_t size = 0;  ///< bytes of the stream the header took
};

/// Parses a PROXY header at the front of `received`, the bytes received so far: nullopt when it
/// needs more bytes, else the header and its size. Never reads past the header.
/// @throws SocketError with errc::malformed_frame for anything that is not a valid header (a
///         connection that sent none at all included), or one longer than `max_size`.
/// @threadsafety Pure: safe from any thread.
std::optional<ParsedProxyHeader> parse_proxy_header(std::string_view received,
                                                    std::size_t max_size = proxy_default_max);

/// Reads the header from a blocking socket without consuming a byte after it (it peeks, then
/// takes exactly the header), within the socket's timeout and deadline: the whole header must
/// arrive in that time.
/// @throws SocketError with errc::malformed_frame for a malformed or oversized header, or a
///         peer that closed before the header ended.
/// @throws TimeoutError when the timeout or deadline passes first.
/// @throws SocketError or ConnectionError when a receive fails.
ProxyHeader read_proxy_header(Socket& sock, std::size_t max_size = proxy_default_max);

/// The v1 (text) or v2 (binary) header that says a TCP connection from `source` to
/// `destination` (both IPv4 or both IPv6; the source's family decides) is being proxied: for
/// clients, tests and proxies written with sockserv.
/// @{
std::string encode_proxy_v1(const Address& source, const Address& destination);
std::string encode_proxy_v2(const Address& source, const Address& destination);
/// @}

}  // namespace sockserv
