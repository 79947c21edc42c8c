// SPDX-License-Identifier: MIT
/// @file
/// Address: one socket address of any family sockserv speaks, as a value type.
///
/// ```
///   family    text form (parse() and to_string())     Python's form
///   AF_INET   127.0.0.1:9999                          ('127.0.0.1', 9999)
///   AF_INET6  [::1]:9999, [fe80::1%eth0]:9999         ('::1', 9999, 0, scope_id)
///   AF_UNIX   unix:/tmp/echo.sock                     '/tmp/echo.sock'
///   AF_UNIX   unix:@name  (Linux abstract namespace)   '\0name'
/// ```
///
/// parse() takes numeric hosts only; lookup() and getaddrinfo() resolve names. An Address owns a
/// sockaddr_storage, so it can be copied, compared, hashed and handed to any socket call.
/// Thread safety: a const Address may be shared freely.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace sockserv {

/// One socket address (IPv4, IPv6, Unix path or abstract name), copyable, comparable and
/// hashable (`std::hash<Address>`: usable as an unordered_map key). address.hpp's description has
/// the text forms.
/// @threadsafety A const Address may be shared freely.
/// @python the address tuples and strings of the socket module
class Address {
 public:
  /// An empty address (family AF_UNSPEC), as a receive buffer or "no address".
  Address() noexcept;
  /// Python's (host, port) tuple: a numeric IPv4 or IPv6 host, "" for the IPv4 wildcard, or a
  /// name, resolved preferring IPv4 as Python's AF_INET servers and clients do ("localhost" is
  /// 127.0.0.1). Implicit, so {"localhost", 9999} reads as in Python.
  /// @throws std::invalid_argument for a malformed numeric host (an unknown IPv6 zone).
  /// @throws SocketError (gai_category()) when the name does not resolve.
  Address(std::string_view host, std::uint16_t port);
  /// Copies a sockaddr from the kernel.
  /// @throws std::invalid_argument when `len` is larger than a sockaddr_storage.
  Address(const sockaddr* addr, socklen_t len);

  /// A numeric IPv4 or IPv6 address; "" is the wildcard (0.0.0.0, ::). An IPv6 host may carry
  /// its zone (`fe80::1%%eth0`, or a number), which sets the scope id.
  /// @throws std::invalid_argument for anything that is not numeric, or an unknown zone.
  /// @{
  static Address ipv4(std::string_view host, std::uint16_t port);
  static Address ipv6(std::string_view host, std::uint16_t port, std::uint32_t scope_id = 0);
  /// @}
  /// A Unix socket file, or a name in Linux's abstract namespace (no file on disk).
  /// @throws std::invalid_argument when the path or name does not fit in a sockaddr_un.
  /// @{
  static Address unix_path(std::string_view path);
  static Address abstract(std::string_view name);
  /// @}

  /// Parses the text forms in address.hpp's table (numeric hosts only); a text starting
  /// with '/' is a Unix path.
  /// @throws std::invalid_argument with the offending text.
  static Address parse(std::string_view text);
  /// Like parse(), but `host:port` may name a host ("localhost:9999"), resolved as the (host,
  /// port) constructor does (IPv4 first) or, given a family, with getaddrinfo for that family and
  /// `socket_type`; returns the first result.
  /// @throws std::invalid_argument for a malformed text (no port, a bad number).
  /// @throws SocketError (gai_category()) when the name does not resolve.
  static Address lookup(std::string_view text, int socket_type = SOCK_STREAM,
                        int family = AF_UNSPEC);

  /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC for an empty address.
  int family() const noexcept { return storage_.ss_family; }
  /// True for AF_INET and AF_INET6.
  bool is_inet() const noexcept { return family() == AF_INET || family() == AF_INET6; }
  /// True for a Unix address, path or abstract.
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  /// True for a name in Linux's abstract namespace.
  bool is_abstract() const noexcept;
  /// True for an IPv6 address of the form `::%ffff:a.b.c.d`.
  bool is_v4_mapped() const noexcept;
  /// The IPv4 form of a v4-mapped IPv6 address (same port); *this otherwise.
  Address unmapped() const;

  /// Numeric host ("127.0.0.1", "::1", "fe80::1%2"); empty for Unix addresses.
  std::string host() const;
  /// The port in host byte order; 0 for Unix addresses.
  std::uint16_t port() const noexcept;
  /// The IPv6 scope (interface index); 0 for other families.
  std::uint32_t scope_id() const noexcept;
  /// The Unix path, or the abstract name without its leading NUL; empty for inet addresses.
  std::string path() const;

  /// The text form of address.hpp's table; "unix:" with an empty path for an unnamed Unix
  /// socket, `<unspecified>` for an empty address.
  std::string to_string() const;

  /// The sockaddr to hand to a socket call, and its length.
  /// @{
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return length_; }
  /// @}
  /// For calls that fill the address in (accept, recvfrom, getsockname): the room available, then
  /// resize() to what the kernel wrote.
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  /// Sets the length after a call that filled data() in.
  void resize(socklen_t len) noexcept { length_ = len; }

  /// Byte-wise equality of the sockaddrs (so the same host and port with another scope differ).
  friend bool operator==(const Address& a, const Address& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t length_;
};

/// Writes address.to_string().
std::ostream& operator<<(std::ostream& out, const Address& address);

/// One getaddrinfo() result, as Python's socket.getaddrinfo returns them.
/// @python the (family, type, proto, canonname, sockaddr) tuple of socket.getaddrinfo
struct AddrInfo {
  int family = AF_UNSPEC;      ///< AF_INET or AF_INET6
  int socket_type = 0;         ///< SOCK_STREAM, SOCK_DGRAM, ...
  int protocol = 0;            ///< IPPROTO_TCP, IPPROTO_UDP, ...
  std::string canonical_name;  ///< set on the first result when AI_CANONNAME was asked for
  Address address;             ///< the address to connect or bind to
};

/// getaddrinfo(3) with Python's argument order. `host` empty means the wildcard (with AI_PASSIVE)
/// or loopback; `port` is a number or a service name.
/// @throws SocketError with gai_category() (or the errno, for EAI_SYSTEM) when the lookup fails.
/// @python socket.getaddrinfo
std::vector<AddrInfo> getaddrinfo(std::string_view host, std::string_view port,
                                  int family = AF_UNSPEC, int socket_type = 0, int protocol = 0,
                                  int flags = 0);

}  // namespace sockserv

/// @cond
// Hashes the address's bytes, consistent with operator==.
template <>
struct std::hash<sockserv::Address> {
  std::size_t operator()(const sockserv::Address& a) const noexcept;
};
/// @endcond
