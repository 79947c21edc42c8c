// SPDX-License-Identifier: MIT
// DelimiterCodec; the first byte picks the delimiter (low 3 bits; self-overlapping ones included,
// as they test the resumed search) and max_size (high 5 bits: 0..31, so the limit is hit often).
#include "fuzz_decoder.hpp"

#include <array>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sockserv;
  static const std::array<std::string, 8> delimiters = {
      "\n", "\r\n", "\r\n\r\n", "aab", "abab", std::string(1, '\0'), "xyz", "\n\n"};
  const std::uint8_t config = fuzz::config(data, size);
  const DelimiterCodec codec(delimiters[config & 7], config >> 3);
  fuzz::run(codec, fuzz::payload(data, size));
  return 0;
}
