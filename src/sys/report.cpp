// SPDX-License-Identifier: MIT
#include "sys/report.hpp"

#include <sockserv/error.hpp>
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

bool report_peer_gone(const std::exception_ptr& error, const Address& client_address,
                      ServerStats& stats) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const SSLEOFError& e) {
    // The client closed TCP without TLS's close_notify while the handler read: common (many
    // clients just close), but what arrived may be cut short, so the handler got an exception.
    ServerStats::add(stats.peer_resets);
    log(LogLevel::info, "connection from " + client_address.to_string() +
                            " ended without TLS close_notify (" + e.what() + ")");
    return true;
  } catch (const ConnectionError& e) {
    // A refused connect() is a ConnectionError too (Python's ConnectionRefusedError), but it is
    // the handler's own outgoing connection failing: a real error.
    if (!is_connection_lost(e.code())) return false;
    ServerStats::add(stats.peer_resets);
    log(LogLevel::info,
        "connection from " + client_address.to_string() + " lost by the peer (" + e.what() + ")");
    return true;
  } catch (...) {
    return false;
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
