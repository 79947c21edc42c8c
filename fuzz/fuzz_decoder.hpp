// SPDX-License-Identifier: MIT
// The body every decoder fuzz target shares. For one input it checks three properties and aborts
// (a crash to libFuzzer, which saves the input) when one fails:
//
//   1. Split invariance: feeding the bytes whole or in input-chosen chunks gives the same
//      messages and the same error.
//   2. Round trip: every decoded message encodes, and the encoding decodes to the same messages.
//   3. Canonical form: that encoding is exactly the prefix of the input the messages came from.
//
// Every codec is built with a small max_size, so a hostile length costs nothing to reject; the
// sanitizers catch any out-of-bounds read on the way.
#pragma once

#include <sockserv/error.hpp>
#include <sockserv/framing.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace sockserv::fuzz {

inline void check(bool ok, const char* property) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property violated: %s\n", property);
    std::abort();
  }
}

struct Outcome {
  std::vector<std::string> messages;
  std::error_code error;  // empty when the stream decoded cleanly to its end
};

// Feeds `wire` in one piece, or in chunks whose sizes come from the data itself: a chunk is as
// long as its first byte says (1..32), so mutating a byte moves a split point.
inline Outcome decode(const Codec& codec, std::string_view wire, bool chunked) {
  Outcome out;
  FrameDecoder decoder(codec);
  try {
    for (std::size_t pos = 0; pos < wire.size();) {
      const std::size_t want =
          chunked ? static_cast<unsigned char>(wire[pos]) % 32 + 1 : wire.size();
      const std::size_t n = std::min(want, wire.size() - pos);
      decoder.feed(wire.substr(pos, n));
      pos += n;
      while (auto m = decoder.next()) out.messages.push_back(std::move(*m));
    }
    decoder.feed_eof();
    while (auto m = decoder.next()) out.messages.push_back(std::move(*m));
    check(!decoder.next(), "a message after the end of the stream");
  } catch (const SocketError& e) {
    out.error = e.code();
  }
  return out;
}

// `one_per_stream`: the codec frames a whole connection (CloseTerminatedCodec), so a stream with
// no message is an error outcome, not an empty sequence to re-encode.
inline void run(const Codec& codec, std::string_view wire, bool one_per_stream = false) {
  const Outcome whole = decode(codec, wire, false);
  const Outcome chunked = decode(codec, wire, true);
  check(whole.messages == chunked.messages, "the split changed the messages");
  check(whole.error == chunked.error, "the split changed the error");
  if (one_per_stream && whole.messages.empty()) return;

  std::string encoded;
  for (const auto& m : whole.messages) {
    try {
      encoded += codec.encode(m);
    } catch (const SocketError&) {
      check(false, "a decoded message does not encode");
    }
  }
  check(wire.substr(0, encoded.size()) == encoded, "re-encoding differs from the input");
  const Outcome again = decode(codec, encoded, true);
  check(!again.error, "re-encoded messages fail to decode");
  check(again.messages == whole.messages, "re-encoded messages decode differently");
}

// The first byte of an input configures the codec; the rest is the wire data.
inline std::uint8_t config(const std::uint8_t* data, std::size_t size) {
  return size > 0 ? data[0] : 0;
}

inline std::string_view payload(const std::uint8_t* data, std::size_t size) {
  return size > 0 ? std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)
                  : std::string_view();
}

}  // namespace sockserv::fuzz
