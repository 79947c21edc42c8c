// SPDX-License-Identifier: MIT
#include "sys/report.hpp"

#include <sockserv/log.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <typeinfo>

namespace sockserv::sys {
namespace {

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && name ? name.get() : mangled;
}

}  // namespace

void report_line(const std::string& line) noexcept { log(LogLevel::warning, line); }

std::string describe_exception(std::exception_ptr error) {
  if (!error) return "(no exception)";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return demangle(typeid(e).name()) + ": " + e.what();
  } catch (...) {
    const auto* type = abi::__cxa_current_exception_type();
    return type ? demangle(type->name()) : "unknown exception";
  }
}

void report_exception(const std::string& header, std::exception_ptr error) noexcept {
  try {
    const std::string banner(40, '-');
    log(LogLevel::error, banner + "\n" + header + "\n" + describe_exception(error) + "\n" + banner);
  } catch (...) {
  }
}

}  // namespace sockserv::sys
