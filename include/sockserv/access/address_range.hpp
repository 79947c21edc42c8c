// SPDX-License-Identifier: MIT
/// @file
/// AddressRange: a CIDR block of IPv4 or IPv6 addresses ("10.0.0.0/8", "2001:db8::/32", or one
/// address: "192.0.2.7" is 192.0.2.7/32), as nginx's allow/deny and set_real_ip_from take them.
///
/// ```
///   const auto office = sockserv::AddressRange::parse("192.0.2.0/24");
///   office.contains(client_address);
/// ```
///
/// An IPv4-mapped IPv6 peer (`::%ffff:192.0.2.7`, what a dual-stack listener reports for an IPv4
/// client) is the IPv4 address it carries, so it matches IPv4 ranges; a range written in the
/// mapped form (`::%ffff:192.0.2.0/120`) is stored as its IPv4 range. Unix addresses are in no
/// range. Thread safety: immutable once made.
#pragma once

#include <sockserv/address.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sockserv {

/// A CIDR block of IPv4 or IPv6 addresses, made by parse().
/// @threadsafety Immutable once made: safe from any thread.
/// @python ipaddress.ip_network (strict)
class AddressRange {
 public:
  /// Parses "ADDRESS" or "ADDRESS/BITS"; a range in the IPv4-mapped form becomes IPv4.
  /// @throws std::invalid_argument naming the text and what is wrong (not an address, prefix
  ///         out of range, host bits set past the prefix).
  static AddressRange parse(std::string_view text);

  /// True when `address` is an IP address in the range (IPv4-mapped IPv6 counts as IPv4).
  bool contains(const Address& address) const noexcept;
  /// AF_INET or AF_INET6.
  int family() const noexcept { return family_; }
  /// The number of leading bits that must match (32 or 128 for one address).
  int prefix_length() const noexcept { return prefix_; }
  /// The canonical form: "10.0.0.0/8".
  std::string to_string() const;

  /// Same family, prefix and network.
  friend bool operator==(const AddressRange&, const AddressRange&) = default;

 private:
  int family_ = 0;
  int prefix_ = 0;
  std::array<std::uint8_t, 16> network_{};  // IPv4 in the first 4 bytes
};

namespace detail {
// The address's family and bytes with an IPv4-mapped IPv6 address turned into IPv4: what every
// rule and per-client key compares. family 0 for a non-IP address.
struct IpBytes {
  int family = 0;
  std::array<std::uint8_t, 16> bytes{};
};
IpBytes ip_bytes(const Address& address) noexcept;
}  // namespace detail

}  // namespace sockserv
