// SPDX-License-Identifier: MIT
/// @file
/// Byte order, the HOWTO's "Binary Data" section: integers travel in network (big-endian) order.
///
/// hton16/32/64 and ntoh16/32/64 convert whole integers, as htons()/htonl() do, and add the 64-bit
/// width that the C API lacks. `load_be*` and `store_be*` read and write big-endian integers at any
/// byte position of a buffer: they go through memcpy, so an unaligned field never faults (the
/// SIGBUS that casting a char* to uint32_t* invites on strict-alignment CPUs).
///
/// Every function is noexcept, and safe from any thread.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace sockserv {

/// `value` with its bytes in reverse order (C++23's std::byteswap, for unsigned integers).
template <class UInt>
constexpr UInt byteswap(UInt value) noexcept {
  UInt out = 0;
  for (std::size_t i = 0; i < sizeof(UInt); ++i) {
    out = static_cast<UInt>((out << 8) | (value & 0xff));
    value = static_cast<UInt>(value >> 8);
  }
  return out;
}

/// `value` in network byte order (big-endian); the same conversion turns network order back into
/// host order.
template <class UInt>
constexpr UInt host_to_network(UInt value) noexcept {
  if constexpr (std::endian::native == std::endian::big || sizeof(UInt) == 1) {
    return value;
  } else {
    return byteswap(value);
  }
}

/// Host to network order and back, for 16, 32 and 64 bits.
/// @python socket.htons, socket.htonl, socket.ntohs, socket.ntohl
/// @{
constexpr std::uint16_t hton16(std::uint16_t v) noexcept { return host_to_network(v); }
constexpr std::uint32_t hton32(std::uint32_t v) noexcept { return host_to_network(v); }
constexpr std::uint64_t hton64(std::uint64_t v) noexcept { return host_to_network(v); }
constexpr std::uint16_t ntoh16(std::uint16_t v) noexcept { return host_to_network(v); }
constexpr std::uint32_t ntoh32(std::uint32_t v) noexcept { return host_to_network(v); }
constexpr std::uint64_t ntoh64(std::uint64_t v) noexcept { return host_to_network(v); }
/// @}

/// Reads a big-endian UInt from the first sizeof(UInt) bytes of `bytes` (which must be that
/// long), at any alignment.
/// @python struct.unpack_from(">H" / ">I" / ">Q", buffer)
template <class UInt>
UInt load_be(const void* bytes) noexcept {
  UInt value;
  std::memcpy(&value, bytes, sizeof value);
  return host_to_network(value);
}

/// Writes `value` big-endian into the first sizeof(UInt) bytes at `bytes`, at any alignment.
/// @python struct.pack_into(">H" / ">I" / ">Q", buffer, 0, value)
template <class UInt>
void store_be(void* bytes, UInt value) noexcept {
  value = host_to_network(value);
  std::memcpy(bytes, &value, sizeof value);
}

/// load_be() and store_be() for 16, 32 and 64 bits.
/// @{
inline std::uint16_t load_be16(const void* p) noexcept { return load_be<std::uint16_t>(p); }
inline std::uint32_t load_be32(const void* p) noexcept { return load_be<std::uint32_t>(p); }
inline std::uint64_t load_be64(const void* p) noexcept { return load_be<std::uint64_t>(p); }
inline void store_be16(void* p, std::uint16_t v) noexcept { store_be(p, v); }
inline void store_be32(void* p, std::uint32_t v) noexcept { store_be(p, v); }
inline void store_be64(void* p, std::uint64_t v) noexcept { store_be(p, v); }
/// @}

}  // namespace sockserv
