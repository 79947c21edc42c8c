// SPDX-License-Identifier: MIT
#include <sockserv/log.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>

namespace sockserv {
namespace {

std::atomic<LogLevel> threshold{LogLevel::info};
std::atomic<LogFormat> line_format{LogFormat::text};

LogSink& custom_sink() {
  static LogSink sink;
  return sink;
}

void write_stderr(LogLevel level, std::string_view message) {
  const std::string line =
      format_log_line(line_format, std::chrono::system_clock::now(), level, message);
  std::size_t done = 0;
  while (done < line.size()) {
    const auto n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

void set_log_sink(LogSink sink) { custom_sink() = std::move(sink); }
void set_log_level(LogLevel level) { threshold = level; }
LogLevel log_level() noexcept { return threshold; }
void set_log_format(LogFormat format) noexcept { line_format = format; }
LogFormat log_format() noexcept { return line_format; }
bool log_enabled(LogLevel level) noexcept { return level >= threshold.load(); }

void log(LogLevel level, std::string_view message) noexcept {
  if (!log_enabled(level)) return;
  try {
    if (const auto& sink = custom_sink()) {
      sink(level, message);
    } else {
      write_stderr(level, message);
    }
  } catch (...) {
    // A logger must not take the server down; the event is lost.
  }
}

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "DEBUG";
    case LogLevel::info:
      return "INFO";
    case LogLevel::warning:
      return "WARNING";
    case LogLevel::error:
      return "ERROR";
  }
  return "?";
}

}  // namespace sockserv
