// SPDX-License-Identifier: MIT
// Reporting to stderr from any thread: each report is one write(2), so lines from concurrent
// handler threads never interleave.
#pragma once

#include <exception>
#include <string>

namespace sockserv::sys {

// Writes `line` and a newline to stderr.
void report_line(const std::string& line) noexcept;

// Python's handle_error output: a 40-dash banner, `header`, the exception's type and message,
// and a closing banner.
void report_exception(const std::string& header, std::exception_ptr error) noexcept;

// "TypeName: what()" for an exception (demangled type name).
std::string describe_exception(std::exception_ptr error);

}  // namespace sockserv::sys
