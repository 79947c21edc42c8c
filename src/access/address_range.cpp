// SPDX-License-Identifier: MIT
#include <sockserv/access/address_range.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace sockserv {
namespace detail {

IpBytes ip_bytes(const Address& address) noexcept {
  IpBytes out;
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address.data());
    out.family = AF_INET;
    std::memcpy(out.bytes.data(), &in->sin_addr, 4);
  } else if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address.data());
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      out.family = AF_INET;
      std::memcpy(out.bytes.data(), in6->sin6_addr.s6_addr + 12, 4);
    } else {
      out.family = AF_INET6;
      std::memcpy(out.bytes.data(), in6->sin6_addr.s6_addr, 16);
    }
  }
  return out;
}

}  // namespace detail

namespace {

// True when the first `bits` bits of a and b are equal.
bool same_prefix(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                 int bits) noexcept {
  const auto whole = static_cast<std::size_t>(bits / 8);
  if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return ((a[whole] ^ b[whole]) & mask) == 0;
}

[[noreturn]] void bad_range(std::string_view text, std::string_view why) {
  throw std::invalid_argument("address range \"" + std::string(text) + "\": " + std::string(why));
}

}  // namespace

AddressRange AddressRange::parse(std::string_view text) {
  const auto slash = text.find('/');
  const std::string host(text.substr(0, slash));
  AddressRange range;
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), range.network_.data()) == 1) {
    range.family_ = AF_INET;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    range.family_ = AF_INET6;
    std::memcpy(range.network_.data(), v6.s6_addr, 16);
  } else {
    bad_range(text, "not an IPv4 or IPv6 address");
  }
  const int max_bits = range.family_ == AF_INET ? 32 : 128;
  range.prefix_ = max_bits;
  if (slash != std::string_view::npos) {
    const auto bits = text.substr(slash + 1);
    int value = -1;
    const auto [end, error] = std::from_chars(bits.data(), bits.data() + bits.size(), value);
    if (error != std::errc() || end != bits.data() + bits.size() || value < 0 || value > max_bits) {
      bad_range(text, "the prefix length must be 0 to " + std::to_string(max_bits));
    }
    range.prefix_ = value;
  }
  std::array<std::uint8_t, 16> masked{};
  masked = range.network_;
  for (int bit = range.prefix_; bit < max_bits; ++bit) {
    masked[static_cast<std::size_t>(bit / 8)] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
  }
  // 10.0.0.1/8 is almost always a typo for a host or for 10.0.0.0/8: say so rather than guess.
  if (masked != range.network_) bad_range(text, "bits are set past the prefix length");
  // ::ffff:a.b.c.d/N (N >= 96) is the IPv4 range a.b.c.d/(N-96): peers are compared unmapped.
  if (range.family_ == AF_INET6 && range.prefix_ >= 96 && IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memmove(range.network_.data(), range.network_.data() + 12, 4);
    std::fill(range.network_.begin() + 4, range.network_.end(), 0);
    range.family_ = AF_INET;
    range.prefix_ -= 96;
  }
  return range;
}

bool AddressRange::contains(const Address& address) const noexcept {
  const auto peer = detail::ip_bytes(address);
  return peer.family == family_ && same_prefix(peer.bytes, network_, prefix_);
}

std::string AddressRange::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family_, network_.data(), text, sizeof text);
  return std::string(text) + "/" + std::to_string(prefix_);
}

}  // namespace sockserv
