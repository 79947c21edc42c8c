// SPDX-License-Identifier: MIT
// The Socket Programming HOWTO, "Binary Data":
//
//   "It is perfectly possible to send binary data over a socket. The major problem is that not
//    all machines use the same formats for binary data. For example, a Motorola chip will
//    represent a 16 bit integer with the value 1 as the two hex bytes 00 01. Intel and DEC,
//    however, are byte-reversed - that same 1 is 01 00. Socket libraries have calls for
//    converting 16 and 32 bit integers - ntohl, htonl, ntohs, htons [...]"
//
// A record is packed field by field in network byte order (store_be16/32/64 put each field at
// its byte offset through memcpy, so no unaligned access happens), sent as one fixed-length
// message, and unpacked on the other end with load_be16/32/64. Both ends run in this program
// over loopback; it prints the wire bytes and both records and exits 0 when they agree.
#include <sockserv/address.hpp>
#include <sockserv/byteorder.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <thread>

namespace {

struct Reading {
  std::uint16_t sensor = 0;
  std::uint32_t sequence = 0;
  std::int32_t millicelsius = 0;  // negative below zero: sent as its two's-complement bits
  std::uint64_t timestamp_ms = 0;
  bool operator==(const Reading&) const = default;
};

// The wire layout: 2 + 4 + 4 + 8 = 18 bytes, big-endian, no padding (a struct has padding, and
// its layout is the compiler's business, so it is never sent as it is in memory).
constexpr std::size_t wire_size = 18;

// [snippet:pack]
std::string pack(const Reading& r) {
  std::string wire(wire_size, '\0');
  sockserv::store_be16(wire.data(), r.sensor);
  sockserv::store_be32(wire.data() + 2, r.sequence);
  sockserv::store_be32(wire.data() + 6, static_cast<std::uint32_t>(r.millicelsius));
  sockserv::store_be64(wire.data() + 10, r.timestamp_ms);
  return wire;
}

Reading unpack(const std::string& wire) {
  Reading r;
  r.sensor = sockserv::load_be16(wire.data());
  r.sequence = sockserv::load_be32(wire.data() + 2);
  r.millicelsius = static_cast<std::int32_t>(sockserv::load_be32(wire.data() + 6));
  r.timestamp_ms = sockserv::load_be64(wire.data() + 10);
  return r;
}
// [end:pack]

std::string hex(const void* bytes, std::size_t n) {
  std::string out;
  char two[4];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(two, sizeof two, "%02x", static_cast<const unsigned char*>(bytes)[i]);
    out += (i ? " " : "") + std::string(two);
  }
  return out;
}

std::string describe(const Reading& r) {
  return "sensor=" + std::to_string(r.sensor) + " sequence=" + std::to_string(r.sequence) +
         " millicelsius=" + std::to_string(r.millicelsius) +
         " timestamp_ms=" + std::to_string(r.timestamp_ms);
}

}  // namespace

int main() {
  try {
    // The HOWTO's example: the 16-bit value 1 in this machine's memory and on the wire.
    const std::uint16_t one = 1;
    const std::uint16_t one_on_wire = sockserv::hton16(one);
    std::cout << "1 in host order:    " << hex(&one, 2) << '\n'
              << "1 in network order: " << hex(&one_on_wire, 2) << '\n';

    const Reading sent{7, 123456, -12500, 1700000000123ULL};
    sockserv::Socket listener = sockserv::create_server(sockserv::Address::ipv4("127.0.0.1", 0));
    listener.settimeout(std::chrono::seconds(10));
    Reading received;
    std::jthread server([&] {
      try {
        auto [conn, peer] = listener.accept();
        conn.settimeout(std::chrono::seconds(10));
        received = unpack(conn.recv_exact(wire_size));  // fixed length: exactly 18 bytes
      } catch (const std::exception& e) {
        std::cerr << "binary_message: server: " << e.what() << '\n';
      }
    });

    sockserv::Socket client = sockserv::create_connection(listener.getsockname());
    const std::string wire = pack(sent);
    std::cout << "wire (" << wire.size() << " bytes): " << hex(wire.data(), wire.size()) << '\n';
    client.sendall(wire);
    server.join();

    std::cout << "sent:     " << describe(sent) << '\n'
              << "received: " << describe(received) << '\n'
              << (received == sent ? "records match" : "RECORDS DIFFER") << std::endl;
    return received == sent ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "binary_message: " << e.what() << '\n';
    return 1;
  }
}
