// SPDX-License-Identifier: MIT
#include <sockserv/stats.hpp>

namespace sockserv {

ServerStatsSnapshot ServerStats::snapshot() const noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  return {
      accepted.load(relaxed),       active.load(relaxed),        rejected.load(relaxed),
      timed_out.load(relaxed),      bytes_in.load(relaxed),      bytes_out.load(relaxed),
      handler_errors.load(relaxed), accept_errors.load(relaxed), tls_handshakes.load(relaxed),
      tls_failures.load(relaxed),   dropped.load(relaxed),       denied.load(relaxed),
      limited.load(relaxed),        peer_resets.load(relaxed),   denied_credentials.load(relaxed)};
}

std::string ServerStatsSnapshot::to_string() const {
  return "accepted=" + std::to_string(accepted) + " active=" + std::to_string(active) +
         " rejected=" + std::to_string(rejected) + " timed_out=" + std::to_string(timed_out) +
         " bytes_in=" + std::to_string(bytes_in) + " bytes_out=" + std::to_string(bytes_out) +
         " handler_errors=" + std::to_string(handler_errors) +
         " accept_errors=" + std::to_string(accept_errors) +
         (tls_handshakes + tls_failures == 0
              ? ""
              : " tls_handshakes=" + std::to_string(tls_handshakes) +
                    " tls_failures=" + std::to_string(tls_failures)) +
         (dropped == 0 ? "" : " dropped=" + std::to_string(dropped)) +
         (denied + limited == 0
              ? ""
              : " denied=" + std::to_string(denied) + " limited=" + std::to_string(limited)) +
         (peer_resets == 0 ? "" : " peer_resets=" + std::to_string(peer_resets)) +
         (denied_credentials == 0 ? ""
                                  : " denied_credentials=" + std::to_string(denied_credentials));
}

}  // namespace sockserv
