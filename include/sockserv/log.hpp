// SPDX-License-Identifier: MIT
// Logging: one pluggable sink for everything sockserv reports (accept errors, handler errors,
// timeouts, refused connections, children killed by signals).
//
// The default sink writes one line per event to stderr, each with one write(2) so that lines of
// concurrent threads never interleave:
//   2026-11-22T08:30:37.123Z WARNING accept 127.0.0.1:9999: Too many open files; retrying in 5 ms
// The default level is info: per-connection events (accepted, closed, timed out) are debug and
// so quiet unless asked for with set_log_level(LogLevel::debug).
//
// Thread safety: log() may be called from any thread; set_log_sink/set_log_level should be
// called before servers start (they are not synchronised with concurrent log() calls).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace sockserv {

enum class LogLevel { debug, info, warning, error };

using LogSink = std::function<void(LogLevel level, std::string_view message)>;

// Replaces the sink; an empty function restores the default (stderr).
void set_log_sink(LogSink sink);
void set_log_level(LogLevel level);
LogLevel log_level() noexcept;
// True when a message of `level` would be written (to skip building it otherwise).
bool log_enabled(LogLevel level) noexcept;
// Sends `message` to the sink when `level` is at or above the threshold. Never throws.
void log(LogLevel level, std::string_view message) noexcept;

std::string_view to_string(LogLevel level) noexcept;

}  // namespace sockserv
