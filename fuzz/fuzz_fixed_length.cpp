// SPDX-License-Identifier: MIT
// FixedLengthCodec; the first byte picks the size (1..16).
#include "fuzz_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sockserv;
  const FixedLengthCodec codec(fuzz::config(data, size) % 16 + 1);
  fuzz::run(codec, fuzz::payload(data, size));
  return 0;
}
