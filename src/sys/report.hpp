// SPDX-License-Identifier: MIT
// Reporting through the logger (log.hpp): warnings, and handle_error's banner at error level.
#pragma once

#include <exception>
#include <string>

namespace sockserv::sys {

// Logs `line` at warning level.
void report_line(const std::string& line) noexcept;

// Python's handle_error output: a 40-dash banner, `header`, the exception's type and message,
// and a closing banner.
void report_exception(const std::string& header, std::exception_ptr error) noexcept;

// "TypeName: what()" for an exception (demangled type name).
std::string describe_exception(std::exception_ptr error);

}  // namespace sockserv::sys
