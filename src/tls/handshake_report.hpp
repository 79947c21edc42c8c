// SPDX-License-Identifier: MIT
// What every server does when a TLS handshake fails (private; blocking and async servers alike):
// count it, and log one line that says who and why.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/stats.hpp>

#include <string_view>

namespace sockserv::tls {

// stats.tls_failures (and stats.timed_out when `timed_out`), and the warning line
// "TLS handshake with ADDR failed: WHY; closing the connection".
void report_handshake_failure(ServerStats& stats, const Address& peer, std::string_view why,
                              bool timed_out);

}  // namespace sockserv::tls
