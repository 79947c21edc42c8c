// SPDX-License-Identifier: MIT
// CloseTerminatedCodec; the first byte picks max_size (0, 1, 100 or 4096 bytes).
#include "fuzz_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sockserv;
  static constexpr std::size_t limits[] = {0, 1, 100, 4096};
  const CloseTerminatedCodec codec(limits[fuzz::config(data, size) & 3]);
  fuzz::run(codec, fuzz::payload(data, size), /*one_per_stream=*/true);
  return 0;
}
