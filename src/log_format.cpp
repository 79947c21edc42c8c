// SPDX-License-Identifier: MIT
// The default sink's lines: the text form and the JSON form (format_log_line, json_quote).
#include <sockserv/log.hpp>

#include <cstdio>
#include <ctime>

namespace sockserv {
namespace {

std::string timestamp(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const std::time_t seconds = system_clock::to_time_t(time);
  // to_time_t truncates towards zero; the milliseconds are those past that second.
  const auto millis =
      duration_cast<milliseconds>(time - system_clock::from_time_t(seconds)).count();
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[40];
  const auto n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(millis));
  return std::string(text, n) + ms;
}

std::string_view lower_case_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
  }
  return "?";
}

bool in(unsigned char byte, unsigned char low, unsigned char high) noexcept {
  return byte >= low && byte <= high;
}

// The length of the well-formed UTF-8 sequence at the start of `text` (whose first byte is not
// ASCII), or 0. The ranges of the second byte are RFC 3629's table: they rule out overlong
// forms (E0 80-9F, F0 80-8F), surrogates (ED A0-BF) and code points past U+10FFFF (F4 90-).
std::size_t utf8_sequence_length(std::string_view text) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the second byte's range
  if (in(lead, 0xC2, 0xDF)) {
    length = 2;
  } else if (in(lead, 0xE0, 0xEF)) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (in(lead, 0xF0, 0xF4)) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;  // a continuation byte, C0/C1 (always overlong) or F5-FF
  }
  if (text.size() < length || !in(byte(1), low, high)) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (!in(byte(i), 0x80, 0xBF)) return 0;
  }
  return length;
}

void append_escaped_ascii(std::string& out, char c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
  }
  if (static_cast<unsigned char>(c) < 0x20) {
    char escape[8];
    std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(c));
    out += escape;
  } else {
    out += c;
  }
}

}  // namespace

std::string json_quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      append_escaped_ascii(out, text[i]);
      ++i;
    } else if (const auto length = utf8_sequence_length(text.substr(i))) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\\ufffd";  // one per stray byte: the rest is resynchronised on the next byte
      ++i;
    }
  }
  out += '"';
  return out;
}

std::string format_log_line(LogFormat format, std::chrono::system_clock::time_point time,
                            LogLevel level, std::string_view message) {
  std::string line;
  if (format == LogFormat::json) {
    line = "{\"time\":\"" + timestamp(time) + "\",\"level\":\"";
    line += lower_case_name(level);
    line += "\",\"message\":";
    line += json_quote(message);
    line += '}';
  } else {
    line = timestamp(time);
    line += ' ';
    line += to_string(level);
    line += ' ';
    line += message;
  }
  line += '\n';
  return line;
}

}  // namespace sockserv
