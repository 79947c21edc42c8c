// SPDX-License-Identifier: MIT
// Private to the servers: how every server family consults its AccessPolicy, so each refusal
// is counted (stats.rejected and stats.denied or stats.limited) and logged the same way.
#pragma once

#include <sockserv/access/access_policy.hpp>
#include <sockserv/address.hpp>
#include <sockserv/stats.hpp>

namespace sockserv::detail {

// Admits `client` (an admitted Admission when there is no policy), or counts and logs the
// refusal. `server` names the listener in the log line.
Admission admit_client(AccessPolicy* policy, const Address& client, ServerStats& stats,
                       const Address& server);

// For a listener that reads PROXY headers: false (counted, logged) when `peer` may not send one.
bool admit_proxy(const AccessPolicy* policy, const Address& peer, ServerStats& stats,
                 const Address& server);

}  // namespace sockserv::detail
