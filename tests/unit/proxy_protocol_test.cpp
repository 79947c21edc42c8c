// SPDX-License-Identifier: MIT
// The PROXY protocol (issue 5): v1 and v2 parsing, incremental parsing, malformed headers, the
// encoders, and read_proxy_header() over a real socket (exact consumption, 1-byte arrivals, a
// sender that stalls mid-header).
#include <sockserv/proxy_protocol.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using Clock = std::chrono::steady_clock;
using test::throws_code;

constexpr std::string_view signature{"\r\n\r\n\0\r\nQUIT\n", 12};

std::string be16(std::uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}

// A v2 header: signature, version/command byte, family/protocol byte, length, then `body`.
std::string v2(unsigned char version_command, unsigned char family, std::string_view body) {
  std::string out(signature);
  out += static_cast<char>(version_command);
  out += static_cast<char>(family);
  out += be16(static_cast<std::uint16_t>(body.size()));
  out += body;
  return out;
}

std::string tlv(std::uint8_t type, std::string_view value) {
  return static_cast<char>(type) + be16(static_cast<std::uint16_t>(value.size())) +
         std::string(value);
}

// 203.0.113.7:56324 -> 192.0.2.1:443 as a v2 IPv4 address block.
std::string inet4_block() {
  return std::string("\xcb\x00\x71\x07", 4) + std::string("\xc0\x00\x02\x01", 4) + be16(56324) +
         be16(443);
}

std::string inet6_block() {
  std::string src(16, '\0'), dst(16, '\0');
  src[0] = '\x20', src[1] = '\x01', src[2] = '\x0d', src[3] = '\xb8', src[15] = '\x07';
  dst[0] = '\x20', dst[1] = '\x01', dst[2] = '\x0d', dst[3] = '\xb8', dst[15] = '\x01';
  return src + dst + be16(40000) + be16(8443);
}

std::string unix_block(std::string_view src, std::string_view dst) {
  std::string block(216, '\0');
  block.replace(0, src.size(), src);
  block.replace(108, dst.size(), dst);
  return block;
}

ParsedProxyHeader parse_whole(std::string_view bytes) {
  auto parsed = parse_proxy_header(bytes);
  if (!parsed) throw std::runtime_error("the parser wants more bytes");
  return std::move(*parsed);
}

auto malformed(std::string_view bytes, std::size_t max_size = proxy_default_max) {
  return throws_code<SocketError>([&] { parse_proxy_header(bytes, max_size); },
                                  errc::malformed_frame);
}

// ---- Version 1 ---------------------------------------------------------------------------------

TEST(ProxyProtocolTest, V1Tcp4ParsesAddressesAndStopsAtTheHeaderEnd) {
  const std::string header = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n";
  const auto parsed = parse_whole(header + "GET / HTTP/1.0\r\n");
  EXPECT_EQ(parsed.size, header.size());
  EXPECT_EQ(parsed.header.version, 1);
  EXPECT_FALSE(parsed.header.local);
  EXPECT_EQ(parsed.header.source, Address::ipv4("203.0.113.7", 56324));
  EXPECT_EQ(parsed.header.destination, Address::ipv4("192.0.2.1", 443));
}

TEST(ProxyProtocolTest, V1Tcp6ParsesAddresses) {
  const std::string header = "PROXY TCP6 2001:db8::7 2001:db8::1 40000 8443\r\n";
  const auto parsed = parse_whole(header);
  EXPECT_EQ(parsed.size, header.size());
  EXPECT_EQ(parsed.header.source, Address::ipv6("2001:db8::7", 40000));
  EXPECT_EQ(parsed.header.destination, Address::ipv6("2001:db8::1", 8443));
}

TEST(ProxyProtocolTest, V1UnknownIsLocalWithOrWithoutAddresses) {
  for (const std::string header :
       {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"}) {
    const auto parsed = parse_whole(header + "payload");
    EXPECT_EQ(parsed.size, header.size()) << header;
    EXPECT_TRUE(parsed.header.local);
    EXPECT_EQ(parsed.header.source.family(), AF_UNSPEC);
  }
}

TEST(ProxyProtocolTest, V1RejectsBadFieldsWhenTheLineIsComplete) {
  EXPECT_TRUE(malformed("PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n"));       // no dport
  EXPECT_TRUE(malformed("PROXY TCP4 203.0.113.7 192.0.2.1 70000 443\r\n"));   // port range
  EXPECT_TRUE(malformed("PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n"));      // sign
  EXPECT_TRUE(malformed("PROXY TCP4 2001:db8::7 192.0.2.1 1 443\r\n"));       // v6 in TCP4
  EXPECT_TRUE(malformed("PROXY TCP5 203.0.113.7 192.0.2.1 56324 443\r\n"));   // protocol
  EXPECT_TRUE(malformed("PROXY TCP4 host.example 192.0.2.1 56324 443\r\n"));  // not numeric
}

TEST(ProxyProtocolTest, V1LongerThan107BytesIsMalformedEvenWithoutItsEnd) {
  std::string header = "PROXY TCP4 ";
  header.resize(proxy_v1_max, '1');  // 107 bytes and still no CRLF
  EXPECT_TRUE(malformed(header));
  // 106 bytes without CRLF may still end well: not an error yet.
  EXPECT_FALSE(parse_proxy_header(std::string_view(header).substr(0, proxy_v1_max - 1)));
  // The longest valid v1 line (the specification's 107 bytes with its CRLF) is accepted.
  const std::string longest =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  ASSERT_EQ(longest.size(), proxy_v1_max);
  EXPECT_EQ(parse_whole(longest).size, proxy_v1_max);
}

// ---- Version 2 ---------------------------------------------------------------------------------

TEST(ProxyProtocolTest, V2ProxyIpv4WithTlvsParsesEverything) {
  const std::string tlvs = tlv(0x01, "h2") + tlv(0x04, "") + tlv(0xE0, std::string(300, 'x'));
  const std::string header = v2(0x21, 0x11, inet4_block() + tlvs);
  const auto parsed = parse_whole(header + "after");
  EXPECT_EQ(parsed.size, header.size());
  EXPECT_EQ(parsed.header.version, 2);
  EXPECT_FALSE(parsed.header.local);
  EXPECT_EQ(parsed.header.source, Address::ipv4("203.0.113.7", 56324));
  EXPECT_EQ(parsed.header.destination, Address::ipv4("192.0.2.1", 443));
  ASSERT_EQ(parsed.header.tlvs.size(), 3u);
  EXPECT_EQ(parsed.header.tlvs[0], (std::pair<std::uint8_t, std::string>{0x01, "h2"}));
  EXPECT_EQ(parsed.header.tlvs[1], (std::pair<std::uint8_t, std::string>{0x04, ""}));
  EXPECT_EQ(parsed.header.tlvs[2].first, 0xE0);
  EXPECT_EQ(parsed.header.tlvs[2].second, std::string(300, 'x'));
}

TEST(ProxyProtocolTest, V2ProxyIpv6ParsesAddresses) {
  const auto parsed = parse_whole(v2(0x21, 0x21, inet6_block()));
  EXPECT_EQ(parsed.header.source, Address::ipv6("2001:db8::7", 40000));
  EXPECT_EQ(parsed.header.destination, Address::ipv6("2001:db8::1", 8443));
  EXPECT_TRUE(parsed.header.tlvs.empty());
}

TEST(ProxyProtocolTest, V2ProxyUnixParsesPaths) {
  const auto parsed = parse_whole(v2(0x21, 0x31, unix_block("/run/client.sock", "/run/lb.sock")));
  EXPECT_EQ(parsed.header.source, Address::unix_path("/run/client.sock"));
  EXPECT_EQ(parsed.header.destination, Address::unix_path("/run/lb.sock"));
}

TEST(ProxyProtocolTest, V2UnixAbstractNamesAndUnnamedSocketsParse) {
  // HAProxy's "abns@" listeners: a leading NUL, the name, NUL padding.
  const auto parsed = parse_whole(v2(0x21, 0x31, unix_block("\0client"s, "\0lb"s)));
  EXPECT_EQ(parsed.header.source, Address::abstract("client"));
  EXPECT_EQ(parsed.header.destination, Address::abstract("lb"));
  const auto unnamed = parse_whole(v2(0x21, 0x31, unix_block("", "/run/lb.sock")));
  EXPECT_EQ(unnamed.header.source, Address::unix_path(""));
}

TEST(ProxyProtocolTest, V2UnixPathFillingAll108BytesIsMalformedNotACrash) {
  // Found by fuzz_proxy_header: Address::unix_path threw std::invalid_argument, which the
  // server's PROXY reader does not expect from the parser.
  EXPECT_TRUE(malformed(v2(0x21, 0x31, unix_block(std::string(108, 'a'), "/run/lb.sock"))));
  EXPECT_TRUE(malformed(v2(0x21, 0x31, unix_block("/run/client.sock", std::string(108, 'b')))));
  // 107 bytes plus the padding NUL is the longest path, and it parses.
  const std::string longest(107, 'c');
  EXPECT_EQ(parse_whole(v2(0x21, 0x31, unix_block(longest, "/x"))).header.source,
            Address::unix_path(longest));
}

TEST(ProxyProtocolTest, V2LocalIsLocalAndSkipsItsAddressBlock) {
  // A health check: LOCAL, family UNSPEC, possibly with TLVs or an address block to ignore.
  const std::string header = v2(0x20, 0x00, tlv(0x05, "id"));
  const auto parsed = parse_whole(header + "x");
  EXPECT_EQ(parsed.size, header.size());
  EXPECT_TRUE(parsed.header.local);
  EXPECT_EQ(parsed.header.source.family(), AF_UNSPEC);
  // PROXY with family UNSPEC carries no addresses either: treated as local.
  EXPECT_TRUE(parse_whole(v2(0x21, 0x00, "")).header.local);
}

TEST(ProxyProtocolTest, V2RejectsBadVersionCommandAndFamily) {
  EXPECT_TRUE(malformed(v2(0x11, 0x11, inet4_block())));  // version 1 in a v2 signature
  EXPECT_TRUE(malformed(v2(0x22, 0x11, inet4_block())));  // command 2
  EXPECT_TRUE(malformed(v2(0x21, 0x41, inet4_block())));  // family 4
  EXPECT_TRUE(malformed(v2(0x21, 0x21, inet4_block())));  // IPv6 with an IPv4-sized block
  EXPECT_TRUE(malformed(v2(0x21, 0x31, "short")));        // Unix block too short
}

TEST(ProxyProtocolTest, V2RejectsTruncatedTlvs) {
  EXPECT_TRUE(malformed(v2(0x21, 0x11, inet4_block() + "\x01"s)));           // type only
  EXPECT_TRUE(malformed(v2(0x21, 0x11, inet4_block() + "\x01\x00"s)));       // half a length
  EXPECT_TRUE(malformed(v2(0x21, 0x11, inet4_block() + "\x01\x00\x05x"s)));  // value too short
}

TEST(ProxyProtocolTest, V2LengthOverMaxSizeIsRefusedBeforeTheBodyArrives) {
  std::string header = v2(0x21, 0x11, inet4_block() + tlv(0xE0, std::string(200, 'y')));
  EXPECT_EQ(parse_whole(header).size, header.size());
  EXPECT_TRUE(malformed(header, header.size() - 1));
  // Only the 16 fixed bytes have come: the announced length alone is enough to refuse.
  std::string announced = v2(0x21, 0x11, "");
  announced.replace(14, 2, be16(65535));
  EXPECT_TRUE(malformed(announced));
}

// ---- Both versions -----------------------------------------------------------------------------

TEST(ProxyProtocolTest, EveryPrefixOfAValidHeaderNeedsMoreAndNeverFails) {
  const std::string headers[] = {
      "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n",
      "PROXY UNKNOWN\r\n",
      v2(0x21, 0x11, inet4_block() + tlv(0x01, "h2")),
      v2(0x21, 0x21, inet6_block()),
      v2(0x20, 0x00, ""),
  };
  for (const auto& header : headers) {
    for (std::size_t n = 0; n < header.size(); ++n) {
      std::optional<ParsedProxyHeader> parsed;
      EXPECT_NO_THROW(parsed = parse_proxy_header(std::string_view(header).substr(0, n)))
          << "prefix of " << n << " bytes";
      EXPECT_FALSE(parsed) << "prefix of " << n << " bytes";
    }
    EXPECT_EQ(parse_whole(header).size, header.size());
  }
}

TEST(ProxyProtocolTest, MissingOrForeignHeaderIsMalformedFromItsFirstBytes) {
  EXPECT_TRUE(malformed("GET / HTTP/1.1\r\n"));
  EXPECT_TRUE(malformed("hello\n"));
  EXPECT_TRUE(malformed("PROXX"));                // diverges from "PROXY " at byte 5
  EXPECT_TRUE(malformed("\r\n\r\n\0\r\nQUIX"s));  // diverges from the v2 signature
  EXPECT_TRUE(malformed("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n"));
}

TEST(ProxyProtocolTest, EncodersRoundTripThroughTheParser) {
  const Address src4 = Address::ipv4("198.51.100.20", 61000);
  const Address dst4 = Address::ipv4("127.0.0.1", 9999);
  const Address src6 = Address::ipv6("2001:db8::42", 1234);
  const Address dst6 = Address::ipv6("::1", 443);
  for (const auto& [src, dst] : {std::pair{src4, dst4}, std::pair{src6, dst6}}) {
    const std::string one = encode_proxy_v1(src, dst);
    const std::string two = encode_proxy_v2(src, dst);
    EXPECT_EQ(one.substr(0, 6), "PROXY ");
    EXPECT_EQ(std::string_view(two).substr(0, 12), signature);
    for (const auto& encoded : {one, two}) {
      const auto parsed = parse_whole(encoded + "tail");
      EXPECT_EQ(parsed.size, encoded.size());
      EXPECT_FALSE(parsed.header.local);
      EXPECT_EQ(parsed.header.source, src) << encoded;
      EXPECT_EQ(parsed.header.destination, dst) << encoded;
    }
  }
}

// ---- read_proxy_header over a socket -----------------------------------------------------------

TEST(ReadProxyHeaderTest, LeavesThePayloadForTheHandlersFirstRead) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(5s);
  const Address src = Address::ipv4("203.0.113.9", 4444);
  for (const auto& header :
       {encode_proxy_v1(src, client.getpeername()), encode_proxy_v2(src, client.getpeername())}) {
    client.sendall(header + "PAYLOAD\n");
    const auto got = read_proxy_header(server);
    EXPECT_EQ(got.source, src);
    EXPECT_EQ(server.recv_exact(8), "PAYLOAD\n");
  }
}

TEST(ReadProxyHeaderTest, HeaderArrivingOneByteAtATimeIsAssembled) {
  auto [client, server] = test::tcp_pair();
  client.set_nodelay(true);
  server.settimeout(10s);
  const std::string header =
      encode_proxy_v2(Address::ipv4("192.0.2.77", 7777), Address::ipv4("127.0.0.1", 80));
  std::thread sender([&, &client = client] {
    // Paced so that most bytes arrive in separate segments; the reader does not depend on it.
    for (const char c : header) {
      client.sendall(std::string_view(&c, 1));
      std::this_thread::sleep_for(1ms);
    }
    client.sendall("after");
  });
  const auto got = read_proxy_header(server);
  sender.join();
  EXPECT_EQ(got.source, Address::ipv4("192.0.2.77", 7777));
  EXPECT_EQ(server.recv_exact(5), "after");
  // The low-water mark used while waiting is back to 1, so later small reads do not stall.
  EXPECT_EQ(server.getsockopt(SOL_SOCKET, SO_RCVLOWAT), 1);
}

TEST(ReadProxyHeaderTest, SenderStallingMidHeaderHitsTheSocketTimeout) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(300ms);
  client.sendall("PROXY TCP4 203.0.113.7 ");  // and nothing more
  const auto start = Clock::now();
  EXPECT_TRUE(throws_code<TimeoutError>([&, &server = server] { read_proxy_header(server); },
                                        std::errc::timed_out));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
}

TEST(ReadProxyHeaderTest, PeerClosingBeforeTheHeaderEndsIsMalformed) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(5s);
  client.sendall("PROXY TCP4 1.2.3.4");
  client.shutdown(SHUT_WR);
  EXPECT_TRUE(throws_code<SocketError>([&, &server = server] { read_proxy_header(server); },
                                       errc::malformed_frame));
}

TEST(ReadProxyHeaderTest, MissingHeaderIsRefusedWithoutWaitingForMore) {
  auto [client, server] = test::tcp_pair();
  server.settimeout(5s);
  client.sendall("GET / HTTP/1.0\r\n");
  const auto start = Clock::now();
  EXPECT_TRUE(throws_code<SocketError>([&, &server = server] { read_proxy_header(server); },
                                       errc::malformed_frame));
  EXPECT_LT(Clock::now() - start, 2s);
}

}  // namespace
}  // namespace sockserv
