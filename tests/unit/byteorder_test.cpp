// SPDX-License-Identifier: MIT
#include <sockserv/byteorder.hpp>  // Test that header file is self-contained.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace sockserv {
namespace {

// The conversions are constexpr: these are checked by the compiler, whatever the host's order.
static_assert(byteswap<std::uint16_t>(0x0102) == 0x0201);
static_assert(byteswap<std::uint32_t>(0x01020304) == 0x04030201);
static_assert(byteswap<std::uint64_t>(0x0102030405060708) == 0x0807060504030201);
static_assert(ntoh32(hton32(0xdeadbeef)) == 0xdeadbeef);
static_assert(ntoh64(hton64(0x0123456789abcdef)) == 0x0123456789abcdef);
static_assert(std::endian::native != std::endian::little || hton16(0x0102) == 0x0201);
static_assert(std::endian::native != std::endian::big || hton16(0x0102) == 0x0102);

TEST(ByteorderTest, HtonPutsTheMostSignificantByteFirstInMemory) {
  const std::uint32_t wire = hton32(0x01020304);
  unsigned char bytes[4];
  std::memcpy(bytes, &wire, 4);
  EXPECT_EQ(bytes[0], 0x01);
  EXPECT_EQ(bytes[3], 0x04);
}

TEST(ByteorderTest, StoreBeWritesNetworkOrderAtAnUnalignedOffset) {
  std::array<unsigned char, 16> buf{};
  store_be32(buf.data() + 1, 0xa1b2c3d4);
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(buf[1], 0xa1);
  EXPECT_EQ(buf[2], 0xb2);
  EXPECT_EQ(buf[3], 0xc3);
  EXPECT_EQ(buf[4], 0xd4);
  EXPECT_EQ(buf[5], 0);
  store_be16(buf.data() + 7, 0xbeef);
  EXPECT_EQ(buf[7], 0xbe);
  EXPECT_EQ(buf[8], 0xef);
}

TEST(ByteorderTest, LoadBeReadsNetworkOrderAtEveryOffset) {
  const unsigned char bytes[] = {0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff};
  EXPECT_EQ(load_be16(bytes + 1), 0x0102u);
  EXPECT_EQ(load_be32(bytes + 3), 0x03040506u);
  EXPECT_EQ(load_be64(bytes + 1), 0x0102030405060708u);
}

TEST(ByteorderTest, StoreThenLoadRoundTripsEveryWidthAndOffset) {
  std::array<char, 24> buf{};
  for (std::size_t offset = 0; offset < 8; ++offset) {
    store_be16(buf.data() + offset, 0xfedc);
    EXPECT_EQ(load_be16(buf.data() + offset), 0xfedc);
    store_be32(buf.data() + offset, 0x80000001u);
    EXPECT_EQ(load_be32(buf.data() + offset), 0x80000001u);
    store_be64(buf.data() + offset, 0xfffefdfcfbfaf9f8u);
    EXPECT_EQ(load_be64(buf.data() + offset), 0xfffefdfcfbfaf9f8u);
  }
}

}  // namespace
}  // namespace sockserv
