// SPDX-License-Identifier: MIT
#include "tls/handshake_report.hpp"

#include <sockserv/log.hpp>

#include <string>

namespace sockserv::tls {

void report_handshake_failure(ServerStats& stats, const Address& peer, std::string_view why,
                              bool timed_out) {
  ServerStats::add(stats.tls_failures);
  if (timed_out) ServerStats::add(stats.timed_out);
  log(LogLevel::warning, "TLS handshake with " + peer.to_string() + " failed: " + std::string(why) +
                             "; closing the connection");
}

}  // namespace sockserv::tls
