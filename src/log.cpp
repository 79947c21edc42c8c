// SPDX-License-Identifier: MIT
#include <sockserv/log.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace sockserv {
namespace {

std::atomic<LogLevel> threshold{LogLevel::info};

LogSink& custom_sink() {
  static LogSink sink;
  return sink;
}

std::string timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t seconds = system_clock::to_time_t(now);
  const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[40];
  const auto n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(millis));
  return std::string(text, n) + ms;
}

void write_stderr(LogLevel level, std::string_view message) {
  std::string line = timestamp();
  line += ' ';
  line += to_string(level);
  line += ' ';
  line += message;
  line += '\n';
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
