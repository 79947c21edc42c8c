// SPDX-License-Identifier: MIT
// Reporting through the logger (log.hpp): warnings, and handle_error's banner at error level.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/stats.hpp>

#include <exception>
#include <string>

namespace sockserv::sys {

// The exception boundary's test for "the peer went away": a ConnectionError for a lost
// connection (ECONNRESET, EPIPE, ECONNABORTED, ENOTCONN, closed mid-message) or an SSLEOFError
// (TLS ended without close_notify). When `error` is one, logs one info line naming the client,
// counts it in stats.peer_resets and returns true; otherwise false (a real failure, for
// handle_error). Never throws.
bool report_peer_gone(const std::exception_ptr& error, const Address& client_address,
                      ServerStats& stats) noexcept;

// Logs `line` at warning level.
void report_line(const std::string& line) noexcept;

// Python's handle_error output: a 40-dash banner, `header`, the exception's type and message,
// and a closing banner.
void report_exception(const std::string& header, std::exception_ptr error) noexcept;

// "TypeName: what()" for an exception (demangled type name).
std::string describe_exception(std::exception_ptr error);

}  // namespace sockserv::sys
