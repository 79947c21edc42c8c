// SPDX-License-Identifier: MIT
#include "access/gate.hpp"

namespace sockserv::detail {

namespace {
void count_refusal(Refusal refusal, ServerStats& stats) noexcept {
  ServerStats::add(stats.rejected);
  const bool by_rule = refusal == Refusal::denied || refusal == Refusal::untrusted_proxy;
  ServerStats::add(by_rule ? stats.denied : stats.limited);
}
}  // namespace

Admission admit_client(AccessPolicy* policy, const Address& client, ServerStats& stats,
                       const Address& server) {
  if (policy == nullptr || !policy->active()) return {};
  Admission admission = policy->admit(client);
  if (!admission) {
    count_refusal(admission.refusal(), stats);
    policy->log_refusal(client, admission.refusal(), server.to_string());
  }
  return admission;
}

bool admit_proxy(const AccessPolicy* policy, const Address& peer, ServerStats& stats,
                 const Address& server) {
  if (policy == nullptr || policy->trusts_proxy(peer)) return true;
  count_refusal(Refusal::untrusted_proxy, stats);
  policy->log_refusal(peer, Refusal::untrusted_proxy, server.to_string());
  return false;
}

}  // namespace sockserv::detail
