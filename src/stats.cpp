// SPDX-License-Identifier: MIT
#include <sockserv/stats.hpp>

#include <iterator>

namespace sockserv {

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

// Every live counter beside its twin in the snapshot, so no loop below can miss one.
struct Field {
  std::atomic<std::uint64_t> ServerStats::*live;
  std::uint64_t ServerStatsSnapshot::*value;
};
constexpr Field fields[] = {
    {&ServerStats::accepted, &ServerStatsSnapshot::accepted},
    {&ServerStats::active, &ServerStatsSnapshot::active},
    {&ServerStats::rejected, &ServerStatsSnapshot::rejected},
    {&ServerStats::timed_out, &ServerStatsSnapshot::timed_out},
    {&ServerStats::bytes_in, &ServerStatsSnapshot::bytes_in},
    {&ServerStats::bytes_out, &ServerStatsSnapshot::bytes_out},
    {&ServerStats::handler_errors, &ServerStatsSnapshot::handler_errors},
    {&ServerStats::accept_errors, &ServerStatsSnapshot::accept_errors},
    {&ServerStats::tls_handshakes, &ServerStatsSnapshot::tls_handshakes},
    {&ServerStats::tls_failures, &ServerStatsSnapshot::tls_failures},
    {&ServerStats::dropped, &ServerStatsSnapshot::dropped},
    {&ServerStats::denied, &ServerStatsSnapshot::denied},
    {&ServerStats::limited, &ServerStatsSnapshot::limited},
    {&ServerStats::peer_resets, &ServerStatsSnapshot::peer_resets},
    {&ServerStats::denied_credentials, &ServerStatsSnapshot::denied_credentials},
};
static_assert(sizeof(ServerStatsSnapshot) == std::size(fields) * sizeof(std::uint64_t),
              "a counter is missing from `fields`");

}  // namespace

ServerStatsSnapshot ServerStats::snapshot() const noexcept {
  ServerStatsSnapshot out;
  for (const auto& f : fields) {
    out.*f.value = (this->*f.live).load(relaxed);
    if (from_children != nullptr) out.*f.value += (from_children->*f.live).load(relaxed);
  }
  return out;
}

void ServerStats::add_gains_since(const ServerStatsSnapshot& before,
                                  ServerStats& into) const noexcept {
  for (const auto& f : fields) {
    if (f.live == &ServerStats::active) continue;  // a level: what was running, not a count
    (into.*f.live).fetch_add((this->*f.live).load(relaxed) - before.*f.value, relaxed);
  }
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
