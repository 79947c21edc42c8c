// SPDX-License-Identifier: MIT
// The default sink's line formats (include/sockserv/log.hpp): json_quote escapes every control
// character, quotes and backslashes, passes well-formed UTF-8 through and turns every stray byte
// into U+FFFD; format_log_line gives the documented text and JSON lines; the default sink writes
// the chosen format to stderr in one line per event.
#include <sockserv/log.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

namespace sockserv {
namespace {

using namespace std::chrono_literals;

TEST(LogFormat, EveryControlCharacterIsEscaped) {
  const std::map<char, std::string> short_forms{
      {'\b', "\\b"}, {'\t', "\\t"}, {'\n', "\\n"}, {'\f', "\\f"}, {'\r', "\\r"}};
  for (int c = 0; c < 0x20; ++c) {
    char expected[8];
    std::snprintf(expected, sizeof expected, "\\u%04x", c);
    const auto it = short_forms.find(static_cast<char>(c));
    const std::string escape = it != short_forms.end() ? it->second : expected;
    EXPECT_EQ(json_quote(std::string(1, static_cast<char>(c))), "\"" + escape + "\"") << c;
  }
  EXPECT_EQ(json_quote(std::string("a\0b", 3)), "\"a\\u0000b\"");
  EXPECT_EQ(json_quote("\x1b[31mred"), "\"\\u001b[31mred\"");
}

TEST(LogFormat, QuotesAndBackslashesAreEscaped) {
  EXPECT_EQ(json_quote(R"(say "hi" \ C:\dir)"), R"("say \"hi\" \\ C:\\dir")");
  EXPECT_EQ(json_quote(""), "\"\"");
  EXPECT_EQ(json_quote("/ ' < > & \x7f"), "\"/ ' < > & \x7f\"");  // nothing else is escaped
}

TEST(LogFormat, WellFormedUtf8PassesThrough) {
  for (const std::string text : {"café", "€ 5", "日本語", "😀", "\xf4\x8f\xbf\xbf" /* U+10FFFF */,
                                 "\xe2\x80\xa8" /* U+2028 */, "\xc2\x80" /* U+0080 */}) {
    EXPECT_EQ(json_quote(text), "\"" + text + "\"") << text;
  }
}

TEST(LogFormat, EachStrayByteBecomesAReplacementCharacter) {
  const std::string r = "\\ufffd";
  EXPECT_EQ(json_quote("\x80"), "\"" + r + "\"");  // a lone continuation byte
  EXPECT_EQ(json_quote("a\xff"
                       "b"),
            "\"a" + r + "b\"");                                    // never in UTF-8
  EXPECT_EQ(json_quote("\xc0\xaf"), "\"" + r + r + "\"");          // overlong '/'
  EXPECT_EQ(json_quote("\xe0\x80\xaf"), "\"" + r + r + r + "\"");  // overlong, 3 bytes
  EXPECT_EQ(json_quote("\xf0\x80\x80\xaf"), "\"" + r + r + r + r + "\"");
  EXPECT_EQ(json_quote("\xed\xa0\x80"), "\"" + r + r + r + "\"");          // a surrogate, U+D800
  EXPECT_EQ(json_quote("\xf4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // past U+10FFFF
  EXPECT_EQ(json_quote("\xf5\x80"), "\"" + r + r + "\"");
  EXPECT_EQ(json_quote("x\xe2\x82"), "\"x" + r + r + "\"");  // cut short at the end
  EXPECT_EQ(json_quote("\xe2\x82"
                       "\xe2\x82\xac"),
            "\"" + r + r + "€\"");  // resynchronised
}

// 2026-11-22T08:30:37.123Z
std::chrono::system_clock::time_point known_time() {
  return std::chrono::system_clock::from_time_t(1795336237) + 123ms;
}

TEST(LogFormat, TextLines) {
  EXPECT_EQ(format_log_line(LogFormat::text, known_time(), LogLevel::warning, "accept: EMFILE"),
            "2026-11-22T08:30:37.123Z WARNING accept: EMFILE\n");
}

TEST(LogFormat, JsonLinesAreOneObjectPerLine) {
  EXPECT_EQ(format_log_line(LogFormat::json, known_time(), LogLevel::error, "one\ntwo \"q\""),
            R"({"time":"2026-11-22T08:30:37.123Z","level":"error","message":"one\ntwo \"q\""})"
            "\n");
  EXPECT_EQ(format_log_line(LogFormat::json, known_time(), LogLevel::debug, ""),
            R"({"time":"2026-11-22T08:30:37.123Z","level":"debug","message":""})"
            "\n");
}

// What the default sink writes to stderr (a pipe here) for one log() call.
std::string logged_to_stderr(LogLevel level, const std::string& message) {
  int pipe_fds[2];
  EXPECT_EQ(::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK), 0);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(pipe_fds[1], STDERR_FILENO);
  log(level, message);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(pipe_fds[1]);
  std::string out(4096, '\0');
  const auto n = ::read(pipe_fds[0], out.data(), out.size());
  ::close(pipe_fds[0]);
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

TEST(LogFormat, TheDefaultSinkWritesTheChosenFormat) {
  ASSERT_EQ(log_format(), LogFormat::text);  // the default
  EXPECT_TRUE(logged_to_stderr(LogLevel::warning, "a\nb").ends_with(" WARNING a\nb\n"));
  set_log_format(LogFormat::json);
  const std::string line = logged_to_stderr(LogLevel::warning, "a\nb");
  set_log_format(LogFormat::text);
  ASSERT_TRUE(line.starts_with("{\"time\":\"")) << line;
  EXPECT_TRUE(line.ends_with("\",\"level\":\"warning\",\"message\":\"a\\nb\"}\n")) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
}

}  // namespace
}  // namespace sockserv
