// SPDX-License-Identifier: MIT
// LengthPrefixCodec; the first byte picks the format (low 2 bits: u16, u32, u64, ascii), the
// ascii width (bits 2..6: 1..19 digits) and max_size (bit 7: 300 or 65536 bytes).
#include "fuzz_decoder.hpp"

namespace {

sockserv::LengthPrefixCodec make_codec(std::uint8_t config) {
  using sockserv::LengthFormat;
  const std::size_t max_size = (config & 0x80) ? 65536 : 300;
  switch (config & 3) {
    case 0:
      return sockserv::LengthPrefixCodec(LengthFormat::u16_be, max_size);
    case 1:
      return sockserv::LengthPrefixCodec(LengthFormat::u32_be, max_size);
    case 2:
      return sockserv::LengthPrefixCodec(LengthFormat::u64_be, max_size);
    default:
      return sockserv::LengthPrefixCodec::ascii(((config >> 2) & 0x1f) % 19 + 1, max_size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto codec = make_codec(sockserv::fuzz::config(data, size));
  sockserv::fuzz::run(codec, sockserv::fuzz::payload(data, size));
  return 0;
}
