// SPDX-License-Identifier: MIT
// libFuzzer target for the PROXY protocol parser, which reads untrusted bytes from the network.
// Properties: it never crashes or reads out of bounds; it throws only SocketError; a header it
// accepts is never longer than the input or the limit; and parsing is incremental - every prefix
// of an accepted header says "need more" (never an error, never a different header).
#include <sockserv/error.hpp>
#include <sockserv/proxy_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t limit = 1024;
  std::optional<sockserv::ParsedProxyHeader> parsed;
  try {
    parsed = sockserv::parse_proxy_header(input, limit);
  } catch (const sockserv::SocketError&) {
    return 0;  // rejected: fine
  }
  if (!parsed) return 0;
  if (parsed->size > input.size() || parsed->size > limit) std::abort();
  for (std::size_t n = 0; n < parsed->size; ++n) {
    try {
      if (sockserv::parse_proxy_header(input.substr(0, n), limit)) std::abort();
    } catch (const sockserv::SocketError&) {
      std::abort();  // a prefix of a valid header must not be an error
    }
  }
  return 0;
}
