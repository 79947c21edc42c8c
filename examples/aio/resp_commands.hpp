// SPDX-License-Identifier: MIT
// The commands of the RESP example: PING, ECHO, GET, SET, DEL, INCR, plus the CONFIG GET that
// redis-benchmark asks first (an empty answer) and QUIT. Replies are RESP2 bytes.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

namespace resp {

class Store {
 public:
  static constexpr std::size_t max_keys = 1'000'000;  // SET of a new key past it: an error

  // Appends the reply to `args` (a non-empty request) to `out`. Sets `quit` for QUIT.
  void execute(const std::vector<std::string>& args, std::string& out, bool& quit);

 private:
  std::unordered_map<std::string, std::string> data_;
};

}  // namespace resp
