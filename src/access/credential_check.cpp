// SPDX-License-Identifier: MIT
#include "access/credential_check.hpp"

#include "access/log_throttle.hpp"

#include <sockserv/log.hpp>

#include <sys/socket.h>

#include <stdexcept>

namespace sockserv::detail {

void require_credential_support(const Address& server_address, int socket_type,
                                const CredentialAllowList& allowed) {
  if (allowed.empty()) return;
  if (!server_address.is_unix() || socket_type != SOCK_STREAM) {
    throw std::invalid_argument(
        "allowed_credentials (--allow-uid/--allow-gid) needs a Unix "
        "stream socket, not " +
        server_address.to_string());
  }
}

bool admit_credentials(int fd, const CredentialAllowList& allowed, const Address& server_address,
                       ServerStats& stats) noexcept {
  if (allowed.empty()) return true;
  std::string why;
  try {
    const auto peer = peer_credentials(fd);
    if (allowed.allows(peer)) return true;
    why = "peer " + peer.to_string() + " is not allowed (neither its uid nor its gid is listed)";
  } catch (const std::exception& e) {
    why = std::string("peer credentials unreadable: ") + e.what();
  }
  ServerStats::add(stats.denied_credentials);
  ServerStats::add(stats.rejected);
  try {
    // A local user can connect at will: one line per second at most.
    static LogThrottle throttle;
    if (const auto left_out = throttle.admit()) {
      std::string line = "sockserv: " + server_address.to_string() + ": refused " + why +
                         "; closing the connection";
      if (*left_out > 0) {
        line +=
            " (and " + std::to_string(*left_out) + " more refusals not logged in the last second)";
      }
      log(LogLevel::warning, line);
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): no memory for the line; the refusal stands
  }
  return false;
}

}  // namespace sockserv::detail
