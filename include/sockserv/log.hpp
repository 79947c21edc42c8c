// SPDX-License-Identifier: MIT
/// @file
/// Logging: one pluggable sink for everything sockserv reports (accept errors, handler errors,
/// timeouts, refused connections, children killed by signals).
///
/// The default sink writes one line per event to stderr, each with one write(2) so that lines of
/// concurrent threads never interleave. Its format is text by default:
///
/// ```
///   2026-11-22T08:30:37.123Z WARNING accept 127.0.0.1:9999: Too many open files; retrying in 5 ms
/// ```
///
/// or, after set_log_format(LogFormat::json), one JSON object per line for log shippers:
///
/// ```
///   {"time":"2026-11-22T08:30:37.123Z","level":"warning","message":"accept 127.0.0.1:9999: ..."}
/// ```
///
/// A text message may span lines (a handler's exception report does); in JSON it stays one line,
/// its newlines escaped. docs/OPERATIONS.md ("Logs") lists the events and their levels.
/// The default level is info: per-connection events (accepted, closed, timed out) are debug and
/// so quiet unless asked for with set_log_level(LogLevel::debug).
///
/// Thread safety: log(), set_log_level() and set_log_format() may be called from any thread (the
/// level and the format are atomics); set_log_sink() should be called before servers start (it is
/// not synchronised with concurrent log() calls).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace sockserv {

/// How much an event matters: `debug` (per-connection events: accepted, closed, timed out),
/// `info` (the default threshold), `warning`, `error` (a handler's exception). Messages below
/// the threshold, log_level(), are dropped.
enum class LogLevel { debug, info, warning, error };

/// The default sink's line format: text for people, json (one object per line) for machines.
enum class LogFormat { text, json };

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
/// The default sink's format (a custom sink formats its lines itself, with format_log_line or not).
/// @threadsafety Safe from any thread; lines being written may still use the old one.
void set_log_format(LogFormat format) noexcept;
/// The default sink's current format.
LogFormat log_format() noexcept;
/// True when a message of `level` would be written (to skip building it otherwise).
bool log_enabled(LogLevel level) noexcept;
/// Sends `message` to the sink when `level` is at or above the threshold. Never throws: an
/// exception from the sink is swallowed and the event lost (a logger must not end a server).
/// @threadsafety Safe from any thread.
void log(LogLevel level, std::string_view message) noexcept;

/// The line the default sink writes for `message` logged at `time`, newline included:
/// text: `"TIME LEVEL message\n"`; json: `{"time":"TIME","level":"level","message":"..."}` and a
/// newline, with the lower-case level and the message escaped by json_quote. TIME is UTC in
/// milliseconds, e.g. 2026-11-22T08:30:37.123Z. Pure: safe from any thread.
std::string format_log_line(LogFormat format, std::chrono::system_clock::time_point time,
                            LogLevel level, std::string_view message);

/// `text` as a JSON string, quotes included. `"`, backslash and the control characters
/// U+0000-U+001F are escaped (`\n`, `\t`, `\r`, `\b`, `\f`, else `\u00XX`); well-formed UTF-8
/// passes through unchanged; each byte that is not part of a well-formed UTF-8 sequence (RFC
/// 3629: no overlong forms, no surrogates, nothing past U+10FFFF) becomes `\ufffd`, so the
/// result is always valid JSON and valid UTF-8, whatever bytes a peer managed to put in a
/// message. Pure: safe from any thread.
/// @python json.dumps(text, ensure_ascii=False), for valid text
std::string json_quote(std::string_view text);

/// "DEBUG", "INFO", "WARNING" or "ERROR", as the default text sink writes it.
std::string_view to_string(LogLevel level) noexcept;

}  // namespace sockserv
