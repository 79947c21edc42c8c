// SPDX-License-Identifier: MIT
/// @file
/// Logging: one pluggable sink for everything sockserv reports (accept errors, handler errors,
/// timeouts, refused connections, children killed by signals).
///
/// The default sink writes one line per event to stderr, each with one write(2) so that lines of
/// concurrent threads never interleave:
///
/// ```
///   2026-11-22T08:30:37.123Z WARNING accept 127.0.0.1:9999: Too many open files; retrying in 5 ms
/// ```
///
/// The default level is info: per-connection events (accepted, closed, timed out) are debug and
/// so quiet unless asked for with set_log_level(LogLevel::debug).
///
/// Thread safety: log() and set_log_level() may be called from any thread (the threshold is
/// atomic); set_log_sink() should be called before servers start (it is not synchronised with
/// concurrent log() calls).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace sockserv {

/// How much an event matters: `debug` (per-connection events: accepted, closed, timed out),
/// `info` (the default threshold), `warning`, `error` (a handler's exception). Messages below
/// the threshold, log_level(), are dropped.
enum class LogLevel { debug, info, warning, error };

/// Receives every message at or above the threshold; may be called from any thread at once.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

/// Replaces the sink; an empty function restores the default (stderr).
/// @threadsafety Call before servers start: not synchronised with concurrent log() calls.
void set_log_sink(LogSink sink);
/// Sets the threshold (default LogLevel::info).
/// @threadsafety Safe from any thread; log() calls in flight may still see the old one.
void set_log_level(LogLevel level);
/// The current threshold.
LogLevel log_level() noexcept;
/// True when a message of `level` would be written (to skip building it otherwise).
bool log_enabled(LogLevel level) noexcept;
/// Sends `message` to the sink when `level` is at or above the threshold. Never throws: an
/// exception from the sink is swallowed and the event lost (a logger must not end a server).
/// @threadsafety Safe from any thread.
void log(LogLevel level, std::string_view message) noexcept;

/// "DEBUG", "INFO", "WARNING" or "ERROR", as the default sink writes it.
std::string_view to_string(LogLevel level) noexcept;

}  // namespace sockserv
