// SPDX-License-Identifier: MIT
// Round trips for every codec: random message sequences (random sizes, empty ones where the
// format allows them, arbitrary binary bytes) are encoded, the wire bytes are fed to a
// FrameDecoder in random splits (1-byte feeds included, some through prepare()/commit()), and the
// decoded messages must equal the originals, in order. Seeds are fixed so a failure reproduces.
#include <sockserv/framing.hpp>

#include <sockserv/error.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace sockserv {
namespace {

using MessageMaker = std::function<std::string(std::mt19937&)>;

constexpr unsigned seeds[] = {1, 2, 3, 42, 20240601};
constexpr std::size_t max_chunks[] = {1, 7, 300, 1 << 16};

std::size_t uniform(std::mt19937& rng, std::size_t lo, std::size_t hi) {
  return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
}

std::string random_bytes(std::mt19937& rng, std::size_t n) {
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(uniform(rng, 0, 255));
  return bytes;
}

// Mostly short messages (where header and boundary bugs live), some up to `max`.
std::size_t random_size(std::mt19937& rng, std::size_t max) {
  return uniform(rng, 0, 3) == 0 ? uniform(rng, 0, max)
                                 : uniform(rng, 0, std::min<std::size_t>(max, 16));
}

// Feeds `wire` in chunks of 1..max_chunk bytes, half of them through the zero-copy
// prepare()/commit() path, draining next() after each; then EOF and a final drain.
std::vector<std::string> decode_in_chunks(const Codec& codec, std::string_view wire,
                                          std::mt19937& rng, std::size_t max_chunk) {
  FrameDecoder decoder(codec);
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < wire.size();) {
    const std::size_t n = std::min(uniform(rng, 1, max_chunk), wire.size() - pos);
    if (uniform(rng, 0, 1) == 0) {
      decoder.feed(wire.substr(pos, n));
    } else {
      std::memcpy(decoder.buffer().prepare(n).data(), wire.data() + pos, n);
      decoder.buffer().commit(n);
    }
    pos += n;
    while (auto m = decoder.next()) out.push_back(std::move(*m));
  }
  decoder.feed_eof();
  while (auto m = decoder.next()) out.push_back(std::move(*m));
  EXPECT_EQ(decoder.next(), std::nullopt) << "a message after the end of the stream";
  return out;
}

// Reports the first differing message instead of printing two whole vectors of binary strings.
void expect_same(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (got[i] != want[i]) {
      ADD_FAILURE() << "message " << i << " differs: got " << got[i].size() << " bytes, want "
                    << want[i].size();
      return;
    }
  }
}

void check_round_trips(const Codec& codec, const MessageMaker& make, std::size_t count = 40) {
  for (const unsigned seed : seeds) {
    for (const std::size_t max_chunk : max_chunks) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << ", chunks of 1.." << max_chunk);
      std::mt19937 rng(seed);
      std::vector<std::string> messages;
      std::string wire;
      for (std::size_t i = 0; i < count; ++i) {
        messages.push_back(make(rng));
        wire += codec.encode(messages.back());
      }
      expect_same(decode_in_chunks(codec, wire, rng, max_chunk), messages);
    }
  }
}

// Draws candidates until encode() accepts one: for formats that forbid some byte sequences.
MessageMaker retry_until_encodable(const Codec& codec, MessageMaker make) {
  return [&codec, make = std::move(make)](std::mt19937& rng) {
    for (;;) {
      std::string message = make(rng);
      try {
        codec.encode(message);
        return message;
      } catch (const SocketError&) {
      }
    }
  };
}

TEST(FramingRandomTest, FixedLengthRoundTripsUnderRandomSplits) {
  for (const std::size_t size : {1, 2, 5, 1000}) {
    const FixedLengthCodec codec(size);
    check_round_trips(codec, [size](std::mt19937& rng) { return random_bytes(rng, size); });
  }
}

// Binary messages that never contain the delimiter's first byte, so any byte value but that one.
TEST(FramingRandomTest, DelimiterRoundTripsUnderRandomSplits) {
  for (const std::string& delimiter :
       std::vector<std::string>{"\n", "\r\n", "\r\n\r\n", std::string("\0\xff", 2)}) {
    SCOPED_TRACE(testing::PrintToString(delimiter));
    const DelimiterCodec codec(delimiter, 5000);
    check_round_trips(codec, [&](std::mt19937& rng) {
      std::string message = random_bytes(rng, random_size(rng, 5000));
      std::replace(message.begin(), message.end(), delimiter[0],
                   static_cast<char>(delimiter[0] + 1));
      return message;
    });
  }
}

// Messages built from the delimiter's own bytes, so partial delimiters sit at every feed
// boundary and the resumed search is exercised; encode() filters the ambiguous ones.
TEST(FramingRandomTest, DelimiterWithSelfOverlapRoundTripsUnderRandomSplits) {
  for (const std::string delimiter : {"\r\n\r\n", "aab", "abab"}) {
    SCOPED_TRACE(delimiter);
    const std::string alphabet = delimiter + "x";
    const DelimiterCodec codec(delimiter, 64);
    check_round_trips(codec, retry_until_encodable(codec, [&](std::mt19937& rng) {
                        std::string message(uniform(rng, 0, 12), 'x');
                        for (char& c : message) c = alphabet[uniform(rng, 0, alphabet.size() - 1)];
                        return message;
                      }));
  }
}

TEST(FramingRandomTest, BinaryLengthPrefixRoundTripsUnderRandomSplits) {
  for (const auto format : {LengthFormat::u16_be, LengthFormat::u32_be, LengthFormat::u64_be}) {
    const LengthPrefixCodec codec(format, 70000);
    check_round_trips(codec, [&](std::mt19937& rng) {
      return random_bytes(rng, random_size(rng, std::min<std::size_t>(codec.max_size(), 5000)));
    });
  }
}

TEST(FramingRandomTest, LargeLengthPrefixedMessagesRoundTrip) {
  const LengthPrefixCodec codec(LengthFormat::u32_be);
  check_round_trips(
      codec, [](std::mt19937& rng) { return random_bytes(rng, uniform(rng, 60000, 70000)); }, 4);
}

TEST(FramingRandomTest, AsciiLengthPrefixRoundTripsUnderRandomSplits) {
  for (const unsigned digits : {1u, 3u, 10u}) {
    const auto codec = LengthPrefixCodec::ascii(digits, 3000);
    check_round_trips(codec, [&](std::mt19937& rng) {
      return random_bytes(rng, random_size(rng, codec.max_size()));
    });
  }
}

TEST(FramingRandomTest, TypePrefixRoundTripsUnderRandomSplits) {
  const std::map<std::uint8_t, TypePrefixCodec::BodyLength> types = {
      {0x00, std::size_t{0}},       {0x01, std::size_t{1}},       {0x7f, std::size_t{9}},
      {0x80, LengthFormat::u16_be}, {0xfe, LengthFormat::u32_be}, {0xff, LengthFormat::u64_be}};
  const TypePrefixCodec codec(types, 3000);
  check_round_trips(codec, [&](std::mt19937& rng) {
    auto it =
        std::next(types.begin(), static_cast<std::ptrdiff_t>(uniform(rng, 0, types.size() - 1)));
    const auto* fixed = std::get_if<std::size_t>(&it->second);
    const std::size_t body = fixed ? *fixed : random_size(rng, codec.max_size());
    return static_cast<char>(it->first) + random_bytes(rng, body);
  });
}

// One message per stream, so each round trip is its own decoder.
TEST(FramingRandomTest, CloseTerminatedRoundTripsUnderRandomSplits) {
  const CloseTerminatedCodec codec(20000);
  for (const unsigned seed : seeds) {
    std::mt19937 rng(seed);
    for (const std::size_t max_chunk : max_chunks) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << ", chunks of 1.." << max_chunk);
      const std::string message = random_bytes(rng, random_size(rng, codec.max_size()));
      expect_same(decode_in_chunks(codec, codec.encode(message), rng, max_chunk), {message});
    }
  }
}

}  // namespace
}  // namespace sockserv
