// SPDX-License-Identifier: MIT
#include "resp_commands.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

namespace resp {
namespace {

void bulk(std::string& out, std::string_view value) {
  out += '$';
  out += std::to_string(value.size());
  out += "\r\n";
  out += value;
  out += "\r\n";
}

void integer(std::string& out, long long value) {
  out += ':';
  out += std::to_string(value);
  out += "\r\n";
}

void wrong_arity(std::string& out, const std::string& name) {
  out += "-ERR wrong number of arguments for '" + name + "' command\r\n";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

void Store::execute(const std::vector<std::string>& args, std::string& out, bool& quit) {
  const std::string name = lower(args[0]);
  const std::size_t n = args.size();
  if (name == "ping") {
    if (n == 1) {
      out += "+PONG\r\n";
    } else if (n == 2) {
      bulk(out, args[1]);
    } else {
      wrong_arity(out, name);
    }
  } else if (name == "echo") {
    n == 2 ? bulk(out, args[1]) : wrong_arity(out, name);
  } else if (name == "get") {
    if (n != 2) return wrong_arity(out, name);
    const auto it = data_.find(args[1]);
    if (it == data_.end()) {
      out += "$-1\r\n";
    } else {
      bulk(out, it->second);
    }
  } else if (name == "set") {
    if (n != 3) return wrong_arity(out, name);
    if (data_.size() >= max_keys && !data_.contains(args[1])) {
      out += "-ERR too many keys\r\n";
      return;
    }
    data_.insert_or_assign(args[1], args[2]);
    out += "+OK\r\n";
  } else if (name == "del") {
    if (n < 2) return wrong_arity(out, name);
    long long removed = 0;
    for (std::size_t i = 1; i < n; ++i) removed += static_cast<long long>(data_.erase(args[i]));
    integer(out, removed);
  } else if (name == "incr") {
    if (n != 2) return wrong_arity(out, name);
    std::string& value = data_[args[1]];
    long long number = 0;
    if (!value.empty()) {
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (ec != std::errc() || ptr != value.data() + value.size() ||
          number == std::numeric_limits<long long>::max()) {
        out += "-ERR value is not an integer or out of range\r\n";
        return;
      }
    }
    value = std::to_string(++number);
    integer(out, number);
  } else if (name == "config") {
    out += "*0\r\n";  // redis-benchmark asks CONFIG GET save/appendonly: nothing to report
  } else if (name == "quit") {
    out += "+OK\r\n";
    quit = true;
  } else {
    out += "-ERR unknown command '" + args[0].substr(0, 64) + "'\r\n";
  }
}

}  // namespace resp
