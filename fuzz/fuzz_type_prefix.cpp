// SPDX-License-Identifier: MIT
// TypePrefixCodec with one type of each kind, named by printable letters so seeds are readable:
// P (no body), F (3 bytes), S/M/L (u16/u32/u64 length prefix). Every other byte is unknown.
#include "fuzz_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sockserv;
  static const TypePrefixCodec codec({{'P', std::size_t{0}},
                                      {'F', std::size_t{3}},
                                      {'S', LengthFormat::u16_be},
                                      {'M', LengthFormat::u32_be},
                                      {'L', LengthFormat::u64_be}},
                                     1000);
  fuzz::run(codec, std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
