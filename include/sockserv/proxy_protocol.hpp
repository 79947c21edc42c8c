// SPDX-License-Identifier: MIT
// The PROXY protocol, versions 1 (text) and 2 (binary): the header a load balancer (HAProxy,
// nginx `proxy_protocol on`, cloud balancers) sends first on each connection to tell the server
// who the real client is.
//
//   v1: "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n"   (at most 107 bytes)
//   v2: 12-byte signature, version/command, family, length, addresses, then TLVs
//
// parse_proxy_header() is incremental: give it the bytes received so far; it says "need more",
// returns the header and its size, or throws SocketError(errc::malformed_frame) for anything that
// is not a valid header - including a connection that did not send one at all, which a server
// expecting the protocol must refuse. Headers longer than max_size are refused too.
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

struct ProxyHeader {
  int version = 0;
  // v2 LOCAL or v1 UNKNOWN: the balancer's own connection (a health check); no addresses.
  bool local = false;
  Address source;                                          // the real client
  Address destination;                                     // the address the client connected to
  std::vector<std::pair<std::uint8_t, std::string>> tlvs;  // v2 type-length-value extensions
};

inline constexpr std::size_t proxy_v1_max = 107;
inline constexpr std::size_t proxy_default_max = 4096;

struct ParsedProxyHeader {
  ProxyHeader header;
  std::size_t size = 0;  // bytes of the stream the header took
};

// See the file comment. Never reads past the header.
std::optional<ParsedProxyHeader> parse_proxy_header(std::string_view received,
                                                    std::size_t max_size = proxy_default_max);

// Reads the header from a blocking socket without consuming a byte after it (it peeks, then
// takes exactly the header), within the socket's timeout/deadline.
ProxyHeader read_proxy_header(Socket& sock, std::size_t max_size = proxy_default_max);

// Encoders, for clients, tests and proxies written with sockserv.
std::string encode_proxy_v1(const Address& source, const Address& destination);
std::string encode_proxy_v2(const Address& source, const Address& destination);

}  // namespace sockserv
