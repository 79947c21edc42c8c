// SPDX-License-Identifier: MIT
// The Redis protocol's requests (RESP2): an array of bulk strings, as clients send
// ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), or an inline command ("PING\r\n", what a person types
// into telnet). Every size is bounded before its bytes are buffered.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace resp {

inline constexpr std::size_t max_args = 1024;            // elements in one request
inline constexpr std::size_t max_bulk = 512 * 1024;      // bytes in one argument
inline constexpr std::size_t max_request = 1024 * 1024;  // bytes in one request, all told
inline constexpr std::size_t max_inline = 64 * 1024;     // bytes in one inline command

enum class Status { incomplete, complete, malformed };

struct Parsed {
  Status status = Status::incomplete;
  std::size_t consumed = 0;  // complete: the request's bytes at the front of the input
  std::string error;         // malformed: what was wrong, for "-ERR Protocol error: ..."
};

// Parses the first request of `input` into `args` (replaced). An empty inline line is a
// complete request with no arguments (skip it). Incomplete past max_request is malformed.
Parsed parse_request(std::string_view input, std::vector<std::string>& args);

}  // namespace resp
