// SPDX-License-Identifier: MIT
#include <sockserv/byteorder.hpp>
#include <sockserv/error.hpp>
#include <sockserv/proxy_protocol.hpp>
#include <sockserv/socket.hpp>

#include "sys/fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sockserv {
namespace {

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

[[noreturn]] void malformed(std::string_view why) {
  // Appended, not "(" + std::string(why) + ")": GCC 12 at -O2 takes that for an overlapping
  // copy (-Wrestrict, its bug 105329), which broke the -Werror package build.
  std::string detail = "(";
  detail.append(why).push_back(')');
  throw_error(errc::malformed_frame, "read PROXY header", detail);
}

// True when `received` could still become `expected` (a prefix of it, or it is a prefix).
bool compatible(std::string_view received, std::string_view expected) {
  const auto n = std::min(received.size(), expected.size());
  return received.substr(0, n) == expected.substr(0, n);
}

std::uint16_t parse_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535 || text.empty()) {
    malformed("bad port");
  }
  return static_cast<std::uint16_t>(value);
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> parts;
  while (!line.empty()) {
    const auto space = line.find(' ');
    parts.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  return parts;
}

std::optional<ParsedProxyHeader> parse_v1(std::string_view received) {
  const auto end = received.substr(0, proxy_v1_max).find("\r\n");
  if (end == std::string_view::npos) {
    if (received.size() >= proxy_v1_max) malformed("v1 line longer than 107 bytes");
    return std::nullopt;
  }
  ParsedProxyHeader out;
  out.size = end + 2;
  out.header.version = 1;
  const auto parts = split_spaces(received.substr(v1_prefix.size(), end - v1_prefix.size()));
  if (!parts.empty() && parts[0] == "UNKNOWN") {
    out.header.local = true;
    return out;
  }
  if (parts.size() != 5 || (parts[0] != "TCP4" && parts[0] != "TCP6")) {
    malformed("v1 expects TCP4|TCP6 SRC DST SPORT DPORT");
  }
  try {
    const bool v4 = parts[0] == "TCP4";
    auto make = [v4](std::string_view host, std::uint16_t port) {
      return v4 ? Address::ipv4(host, port) : Address::ipv6(host, port);
    };
    out.header.source = make(parts[1], parse_port(parts[3]));
    out.header.destination = make(parts[2], parse_port(parts[4]));
  } catch (const std::invalid_argument&) {
    malformed("v1 address");
  }
  return out;
}

Address inet_address(int family, const char* addr, const char* port) {
  Address a;
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    std::memcpy(&sin.sin_addr, addr, 4);
    std::memcpy(&sin.sin_port, port, 2);
    return Address(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  std::memcpy(&sin6.sin6_addr, addr, 16);
  std::memcpy(&sin6.sin6_port, port, 2);
  return Address(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
}

// A v2 AF_UNIX address field: sun_path's 108 bytes, NUL-padded. A leading NUL starts a Linux
// abstract name (HAProxy's "abns@"), whose padding is dropped. A path filling all 108 bytes has no
// room for the NUL that Address (and most peers) expect, so it is malformed rather than truncated.
constexpr std::size_t unix_field = 108;

Address unix_address(std::string_view field) {
  if (field.front() == '\0') {
    const auto name = field.substr(1);
    const auto end = name.find_last_not_of('\0');
    return end == std::string_view::npos ? Address::unix_path("")
                                         : Address::abstract(name.substr(0, end + 1));
  }
  const auto length = field.find('\0');
  if (length == std::string_view::npos) malformed("v2 Unix path is not NUL-terminated");
  return Address::unix_path(field.substr(0, length));
}

void parse_v2_addresses(int family_byte, std::string_view body, ProxyHeader& header) {
  const int family = family_byte >> 4;
  std::size_t used = 0;
  if (family == 1 || family == 2) {  // AF_INET / AF_INET6: src, dst, sport, dport
    const std::size_t len = family == 1 ? 4 : 16;
    used = 2 * len + 4;
    if (body.size() < used) malformed("v2 address block too short");
    const int af = family == 1 ? AF_INET : AF_INET6;
    header.source = inet_address(af, body.data(), body.data() + 2 * len);
    header.destination = inet_address(af, body.data() + len, body.data() + 2 * len + 2);
  } else if (family == 3) {  // AF_UNIX: two 108-byte paths
    used = 2 * unix_field;
    if (body.size() < used) malformed("v2 address block too short");
    header.source = unix_address(body.substr(0, unix_field));
    header.destination = unix_address(body.substr(unix_field, unix_field));
  } else if (family != 0) {
    malformed("v2 unknown address family");
  }
  for (std::string_view tlvs = body.substr(used); !tlvs.empty();) {
    if (tlvs.size() < 3) malformed("v2 truncated TLV");
    const auto len = load_be16(tlvs.data() + 1);
    if (tlvs.size() < 3u + len) malformed("v2 TLV longer than the header");
    header.tlvs.emplace_back(static_cast<std::uint8_t>(tlvs[0]), std::string(tlvs.substr(3, len)));
    tlvs.remove_prefix(3u + len);
  }
}

std::optional<ParsedProxyHeader> parse_v2(std::string_view received, std::size_t max_size) {
  if (received.size() < 16) return std::nullopt;
  const auto version_command = static_cast<unsigned char>(received[12]);
  if ((version_command >> 4) != 2) malformed("v2 version is not 2");
  const unsigned command = version_command & 0x0f;
  if (command > 1) malformed("v2 unknown command");
  const std::size_t size = 16 + load_be16(received.data() + 14);
  if (size > max_size) malformed("v2 header longer than the limit");
  if (received.size() < size) return std::nullopt;
  ParsedProxyHeader out;
  out.size = size;
  out.header.version = 2;
  out.header.local = command == 0;
  parse_v2_addresses(static_cast<unsigned char>(received[13]), received.substr(16, size - 16),
                     out.header);
  if (!out.header.local && out.header.source.family() == AF_UNSPEC) out.header.local = true;
  return out;
}

}  // namespace

std::optional<ParsedProxyHeader> parse_proxy_header(std::string_view received,
                                                    std::size_t max_size) {
  if (received.empty()) return std::nullopt;
  if (compatible(received, v2_signature)) {
    return received.size() < v2_signature.size() ? std::nullopt : parse_v2(received, max_size);
  }
  if (compatible(received, v1_prefix)) {
    return received.size() < v1_prefix.size() ? std::nullopt : parse_v1(received);
  }
  malformed("the connection did not start with one");
}

ProxyHeader read_proxy_header(Socket& sock, std::size_t max_size) {
  // Peek at what has arrived; while the header is incomplete, wait (poll honours SO_RCVLOWAT)
  // for more than we have instead of spinning on bytes that are already there. Then take exactly
  // the header, so the handler's first read starts at its first byte. The whole header must come
  // within the socket's timeout. A peer that shut down after part of a header keeps the socket
  // readable with nothing new to peek: POLLRDHUP says so (without it the loop would spin).
  using Clock = std::chrono::steady_clock;
  auto until = Clock::time_point::max();
  if (const auto t = sock.gettimeout(); t && t->count() > 0) until = Clock::now() + *t;
  if (const auto d = sock.get_deadline(); d && *d < until) until = *d;
  std::string peeked(max_size, '\0');
  for (std::size_t have = 0;;) {
    std::error_code ec;
    const short revents = sys::poll_one(sock.fileno(), POLLIN | POLLRDHUP, until, ec);
    if (revents == 0) {
      throw_error(ec ? ec : std::make_error_code(std::errc::timed_out), "PROXY header");
    }
    const auto n = sys::retry_eintr(
        [&] { return ::recv(sock.fileno(), peeked.data(), max_size, MSG_PEEK | MSG_DONTWAIT); });
    if (n < 0) {
      if (sys::would_block(errno)) continue;
      throw_errno("PROXY header");
    }
    if (n == 0) malformed("connection closed before the header ended");
    const auto got = static_cast<std::size_t>(n);
    if (auto parsed = parse_proxy_header(std::string_view(peeked.data(), got), max_size)) {
      if (have > 0) sock.setsockopt(SOL_SOCKET, SO_RCVLOWAT, 1);
      sock.recv_exact(parsed->size);
      return std::move(parsed->header);
    }
    if (revents & (POLLRDHUP | POLLHUP)) malformed("connection closed before the header ended");
    if (got >= max_size) malformed("header longer than the limit");
    have = got;
    sock.setsockopt(SOL_SOCKET, SO_RCVLOWAT, static_cast<int>(have + 1));
  }
}

std::string encode_proxy_v1(const Address& source, const Address& destination) {
  const char* family = source.family() == AF_INET6 ? "TCP6" : "TCP4";
  return "PROXY " + std::string(family) + " " + source.host() + " " + destination.host() + " " +
         std::to_string(source.port()) + " " + std::to_string(destination.port()) + "\r\n";
}

std::string encode_proxy_v2(const Address& source, const Address& destination) {
  std::string out(v2_signature);
  out += static_cast<char>(0x21);  // version 2, PROXY
  const bool v6 = source.family() == AF_INET6;
  out += static_cast<char>(v6 ? 0x21 : 0x11);  // TCP over IPv6 / IPv4
  const std::size_t len = v6 ? 36 : 12;
  char length[2];
  store_be16(length, static_cast<std::uint16_t>(len));
  out.append(length, 2);
  auto append_addr = [&](const Address& a) {
    if (v6) {
      out.append(reinterpret_cast<const char*>(
                     &reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_addr),
                 16);
    } else {
      out.append(
          reinterpret_cast<const char*>(&reinterpret_cast<const sockaddr_in*>(a.data())->sin_addr),
          4);
    }
  };
  append_addr(source);
  append_addr(destination);
  char ports[4];
  store_be16(ports, source.port());
  store_be16(ports + 2, destination.port());
  out.append(ports, 4);
  return out;
}

}  // namespace sockserv
