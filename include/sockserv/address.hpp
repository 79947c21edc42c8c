// SPDX-License-Identifier: MIT
// Address: one socket address of any family sockserv speaks, as a value type.
//
//   family    text form (parse() and to_string())     Python's form
//   AF_INET   127.0.0.1:9999                          ('127.0.0.1', 9999)
//   AF_INET6  [::1]:9999, [fe80::1%eth0]:9999         ('::1', 9999, 0, scope_id)
//   AF_UNIX   unix:/tmp/echo.sock                     '/tmp/echo.sock'
//   AF_UNIX   unix:@name  (Linux abstract namespace)   '\0name'
//
// parse() takes numeric hosts only; lookup() and getaddrinfo() resolve names. An Address owns a
// sockaddr_storage, so it can be copied, compared, hashed and handed to any socket call.
// Thread safety: a const Address may be shared freely.
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

class Address {
 public:
  // An empty address (family AF_UNSPEC), as a receive buffer or "no address".
  Address() noexcept;
  // Python's (host, port) tuple: a numeric IPv4 or IPv6 host, "" for the IPv4 wildcard, or a
  // name, resolved preferring IPv4 as Python's AF_INET servers and clients do ("localhost" is
  // 127.0.0.1). Implicit, so {"localhost", 9999} reads as in Python. Throws std::invalid_argument
  // or SocketError (gai_category) when the host does not resolve.
  Address(std::string_view host, std::uint16_t port);
  // Copies a sockaddr from the kernel. Throws std::invalid_argument when `len` is too large.
  Address(const sockaddr* addr, socklen_t len);

  // Numeric IPv4 / IPv6 address; throws std::invalid_argument for anything that is not numeric.
  static Address ipv4(std::string_view host, std::uint16_t port);
  static Address ipv6(std::string_view host, std::uint16_t port, std::uint32_t scope_id = 0);
  // A Unix socket file, or a name in Linux's abstract namespace (no file on disk).
  static Address unix_path(std::string_view path);
  static Address abstract(std::string_view name);

  // Parses the text forms in the table above (numeric hosts only). Throws std::invalid_argument
  // with the offending text.
  static Address parse(std::string_view text);
  // Like parse(), but `host:port` may name a host ("localhost:9999"), resolved as the (host, port)
  // constructor does (IPv4 first) or, given a family, with getaddrinfo for that family and
  // `socket_type`; returns the first result. Throws SocketError (gai_category) when the name
  // does not resolve.
  static Address lookup(std::string_view text, int socket_type = SOCK_STREAM,
                        int family = AF_UNSPEC);

  int family() const noexcept { return storage_.ss_family; }
  bool is_inet() const noexcept { return family() == AF_INET || family() == AF_INET6; }
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  bool is_abstract() const noexcept;
  // True for an IPv6 address of the form ::ffff:a.b.c.d.
  bool is_v4_mapped() const noexcept;
  // The IPv4 form of a v4-mapped IPv6 address; *this otherwise.
  Address unmapped() const;

  // Numeric host ("127.0.0.1", "::1", "fe80::1%2"); empty for Unix addresses.
  std::string host() const;
  std::uint16_t port() const noexcept;
  std::uint32_t scope_id() const noexcept;
  // The Unix path, or the abstract name without its leading NUL; empty for inet addresses.
  std::string path() const;

  // The text form of the table above; "unix:" with an empty path for an unnamed Unix socket,
  // "<unspecified>" for an empty address.
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return length_; }
  // For calls that fill the address in (accept, recvfrom, getsockname): the room available, then
  // resize() to what the kernel wrote.
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  void resize(socklen_t len) noexcept { length_ = len; }

  friend bool operator==(const Address& a, const Address& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t length_;
};

std::ostream& operator<<(std::ostream& out, const Address& address);

// One getaddrinfo() result, as Python's socket.getaddrinfo returns them.
struct AddrInfo {
  int family = AF_UNSPEC;
  int socket_type = 0;
  int protocol = 0;
  std::string canonical_name;
  Address address;
};

// getaddrinfo(3) with Python's argument order. `host` empty means the wildcard (with AI_PASSIVE)
// or loopback. Throws SocketError with gai_category() when the lookup fails.
std::vector<AddrInfo> getaddrinfo(std::string_view host, std::string_view port,
                                  int family = AF_UNSPEC, int socket_type = 0, int protocol = 0,
                                  int flags = 0);

}  // namespace sockserv

template <>
struct std::hash<sockserv::Address> {
  std::size_t operator()(const sockserv::Address& a) const noexcept;
};
