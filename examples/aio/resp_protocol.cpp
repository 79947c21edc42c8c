// SPDX-License-Identifier: MIT
#include "resp_protocol.hpp"

#include <charconv>

namespace resp {
namespace {

Parsed malformed(std::string why) { return {Status::malformed, 0, std::move(why)}; }

Parsed incomplete(std::string_view input) {
  if (input.size() > max_request) return malformed("request larger than 1 MiB");
  return {};
}

// The decimal after a type byte ('*' or '$') on a line starting at `pos`: sets `value` and moves
// `pos` past the line's "\r\n". False with `why` empty: the line is not all here yet.
bool read_count(std::string_view in, std::size_t& pos, long long& value, std::string& why) {
  const auto end = in.find("\r\n", pos);
  if (end == std::string_view::npos) {
    if (in.size() - pos > 32) why = "length line too long";
    return false;
  }
  const char* first = in.data() + pos + 1;
  const char* last = in.data() + end;
  const auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last || first == last) {
    why = "invalid length";
    return false;
  }
  pos = end + 2;
  return true;
}

Parsed parse_inline(std::string_view in, std::vector<std::string>& args) {
  const auto nl = in.find('\n');
  if (nl == std::string_view::npos) {
    if (in.size() > max_inline) return malformed("inline command too long");
    return {};
  }
  if (nl > max_inline) return malformed("inline command too long");
  std::string_view line = in.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  while (!line.empty()) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    line.remove_prefix(start);
    const auto stop = std::min(line.find_first_of(" \t"), line.size());
    if (args.size() == max_args) return malformed("too many arguments");
    args.emplace_back(line.substr(0, stop));
    line.remove_prefix(stop);
  }
  return {Status::complete, nl + 1, {}};
}

}  // namespace

Parsed parse_request(std::string_view in, std::vector<std::string>& args) {
  args.clear();
  if (in.empty()) return {};
  if (in[0] != '*') return parse_inline(in, args);
  std::size_t pos = 0;
  long long count = 0;
  std::string why;
  if (!read_count(in, pos, count, why)) return why.empty() ? incomplete(in) : malformed(why);
  if (count < 0 || static_cast<unsigned long long>(count) > max_args) {
    return malformed("invalid multibulk length");
  }
  for (long long i = 0; i < count; ++i) {
    if (pos >= in.size()) return incomplete(in);
    if (in[pos] != '$') return malformed("expected '$', got '" + std::string(1, in[pos]) + "'");
    long long len = 0;
    if (!read_count(in, pos, len, why)) return why.empty() ? incomplete(in) : malformed(why);
    if (len < 0 || static_cast<unsigned long long>(len) > max_bulk) {
      return malformed("invalid bulk length");
    }
    const auto n = static_cast<std::size_t>(len);
    if (in.size() - pos < n + 2) return incomplete(in);
    if (in.substr(pos + n, 2) != "\r\n") return malformed("bulk string not ended by CRLF");
    args.emplace_back(in.substr(pos, n));
    pos += n + 2;
  }
  return {Status::complete, pos, {}};
}

}  // namespace resp
