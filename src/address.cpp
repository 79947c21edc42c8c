// SPDX-License-Identifier: MIT
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <ostream>
#include <stdexcept>

namespace sockserv {
namespace {

constexpr std::string_view unix_prefix = "unix:";

[[noreturn]] void bad_address(std::string_view why, std::string_view text) {
  throw std::invalid_argument("invalid address '" + std::string(text) + "': " + std::string(why));
}

std::uint16_t parse_port(std::string_view digits, std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      value > 65535) {
    bad_address("port must be a number from 0 to 65535", text);
  }
  return static_cast<std::uint16_t>(value);
}

// Splits "host:port" or "[v6]:port" into its parts; the brackets are removed.
std::pair<std::string_view, std::string_view> split_host_port(std::string_view text) {
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      bad_address("expected [ipv6]:port", text);
    }
    return {text.substr(1, close - 1), text.substr(close + 2)};
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) bad_address("expected host:port", text);
  if (text.find(':') != colon) bad_address("an IPv6 address needs brackets: [addr]:port", text);
  return {text.substr(0, colon), text.substr(colon + 1)};
}

}  // namespace

Address::Address() noexcept : storage_{}, length_(0) { storage_.ss_family = AF_UNSPEC; }

Address::Address(const sockaddr* addr, socklen_t len) : storage_{}, length_(len) {
  if (len > sizeof storage_) throw std::invalid_argument("sockaddr larger than sockaddr_storage");
  std::memcpy(&storage_, addr, len);
  if (len < sizeof(sa_family_t)) storage_.ss_family = AF_UNSPEC;
}

Address::Address(std::string_view host, std::uint16_t port) : Address() {
  in6_addr probe6{};
  in_addr probe4{};
  const std::string h(host);
  if (h.empty() || ::inet_pton(AF_INET, h.c_str(), &probe4) == 1) {
    *this = ipv4(h, port);
  } else if (h.find(':') != std::string::npos || ::inet_pton(AF_INET6, h.c_str(), &probe6) == 1) {
    *this = ipv6(h, port);
  } else {
    const auto service = std::to_string(port);
    std::vector<AddrInfo> found;
    try {
      found = getaddrinfo(h, service, AF_INET);
    } catch (const SocketError&) {
      found = getaddrinfo(h, service, AF_UNSPEC);  // an IPv6-only name
    }
    *this = found.front().address;
  }
}

Address Address::ipv4(std::string_view host, std::uint16_t port) {
  Address a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  const std::string h(host.empty() ? "0.0.0.0" : host);
  if (::inet_pton(AF_INET, h.c_str(), &sin->sin_addr) != 1) bad_address("not an IPv4 address", h);
  a.length_ = sizeof(sockaddr_in);
  return a;
}

Address Address::ipv6(std::string_view host, std::uint16_t port, std::uint32_t scope_id) {
  Address a;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::string h(host.empty() ? "::" : host);
  if (const auto pct = h.find('%'); pct != std::string::npos) {  // fe80::1%eth0 or %2
    const std::string zone = h.substr(pct + 1);
    h.resize(pct);
    scope_id = ::if_nametoindex(zone.c_str());
    if (scope_id == 0) {
      auto [end, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), scope_id);
      if (ec != std::errc() || end != zone.data() + zone.size()) bad_address("unknown zone", zone);
    }
  }
  if (::inet_pton(AF_INET6, h.c_str(), &sin6->sin6_addr) != 1) {
    bad_address("not an IPv6 address", h);
  }
  sin6->sin6_scope_id = scope_id;
  a.length_ = sizeof(sockaddr_in6);
  return a;
}

Address Address::unix_path(std::string_view path) {
  Address a;
  auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage_);
  if (path.size() >= sizeof sun->sun_path) bad_address("Unix socket path too long", path);
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  a.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

Address Address::abstract(std::string_view name) {
  Address a;
  auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage_);
  if (name.size() + 1 > sizeof sun->sun_path) bad_address("abstract name too long", name);
  sun->sun_family = AF_UNIX;
  sun->sun_path[0] = '\0';
  std::memcpy(sun->sun_path + 1, name.data(), name.size());
  // The abstract name is exactly the bytes within the length: no terminating NUL.
  a.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

Address Address::parse(std::string_view text) {
  if (text.starts_with(unix_prefix)) {
    const auto rest = text.substr(unix_prefix.size());
    if (rest.starts_with('@')) return abstract(rest.substr(1));
    if (rest.empty()) bad_address("empty Unix path", text);
    return unix_path(rest);
  }
  if (text.starts_with('/')) return unix_path(text);
  const auto [host, port_text] = split_host_port(text);
  const auto port = parse_port(port_text, text);
  if (host.find(':') != std::string_view::npos || text.starts_with('[')) return ipv6(host, port);
  return ipv4(host, port);
}

Address Address::lookup(std::string_view text, int socket_type, int family) {
  if (text.starts_with(unix_prefix) || text.starts_with('/') || text.starts_with('[')) {
    return parse(text);
  }
  const auto [host, port_text] = split_host_port(text);
  const auto port = parse_port(port_text, text);
  if (family == AF_UNSPEC) return Address(host, port);  // IPv4 first, as Python's AF_INET
  const int flags = host.empty() ? AI_PASSIVE : 0;
  return getaddrinfo(host, port_text, family, socket_type, 0, flags).front().address;
}

bool Address::is_abstract() const noexcept {
  const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
  return family() == AF_UNIX && length_ > offsetof(sockaddr_un, sun_path) &&
         sun->sun_path[0] == '\0';
}

bool Address::is_v4_mapped() const noexcept {
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
  return family() == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
}

Address Address::unmapped() const {
  if (!is_v4_mapped()) return *this;
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
  Address a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  sin->sin_family = AF_INET;
  sin->sin_port = sin6->sin6_port;
  std::memcpy(&sin->sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
  a.length_ = sizeof(sockaddr_in);
  return a;
}

std::string Address::host() const {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
                sizeof text);
  } else if (family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    if (sin6->sin6_scope_id != 0) {
      std::string out(text);
      out += '%';
      out += std::to_string(sin6->sin6_scope_id);
      return out;
    }
  }
  return text;
}

std::uint16_t Address::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::uint32_t Address::scope_id() const noexcept {
  if (family() != AF_INET6) return 0;
  return reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_scope_id;
}

std::string Address::path() const {
  if (family() != AF_UNIX || length_ <= offsetof(sockaddr_un, sun_path)) return {};
  const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
  const std::size_t n = length_ - offsetof(sockaddr_un, sun_path);
  if (sun->sun_path[0] == '\0') return std::string(sun->sun_path + 1, n - 1);
  return std::string(sun->sun_path, ::strnlen(sun->sun_path, n));
}

std::string Address::to_string() const {
  switch (family()) {
    case AF_INET:
      return host() + ":" + std::to_string(port());
    case AF_INET6: {
      // Appended piece by piece: GCC 12's -Wrestrict misfires on "[" + std::string in Release.
      std::string out(1, '[');
      out += host();
      out += "]:";
      out += std::to_string(port());
      return out;
    }
    case AF_UNIX:
      return std::string(unix_prefix) + (is_abstract() ? "@" : "") + path();
    default:
      return "<unspecified>";
  }
}

bool operator==(const Address& a, const Address& b) noexcept {
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

std::ostream& operator<<(std::ostream& out, const Address& address) {
  return out << address.to_string();
}

std::vector<AddrInfo> getaddrinfo(std::string_view host, std::string_view port, int family,
                                  int socket_type, int protocol, int flags) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = socket_type;
  hints.ai_protocol = protocol;
  hints.ai_flags = flags;
  const std::string h(host), p(port);
  addrinfo* list = nullptr;
  const int rc = ::getaddrinfo(h.empty() ? nullptr : h.c_str(), p.empty() ? nullptr : p.c_str(),
                               &hints, &list);
  if (rc != 0) {
    const std::error_code ec = rc == EAI_SYSTEM ? std::error_code(errno, std::generic_category())
                                                : std::error_code(rc, gai_category());
    throw_error(ec, "getaddrinfo", h + ":" + p);
  }
  std::vector<AddrInfo> out;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    out.push_back({ai->ai_family, ai->ai_socktype, ai->ai_protocol,
                   ai->ai_canonname ? ai->ai_canonname : "", Address(ai->ai_addr, ai->ai_addrlen)});
  }
  ::freeaddrinfo(list);
  return out;
}

}  // namespace sockserv

std::size_t std::hash<sockserv::Address>::operator()(const sockserv::Address& a) const noexcept {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(a.data()), a.size()));
}
