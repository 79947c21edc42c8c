// SPDX-License-Identifier: MIT
// The Unix peer-credential check every stream server runs right after accept (blocking and
// event-loop servers alike): one rule, one log line, one counter.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/stats.hpp>
#include <sockserv/unix_credentials.hpp>

namespace sockserv::detail {

// Throws std::invalid_argument when `allowed` is not empty and the server cannot check it (not a
// Unix stream socket: only those carry SO_PEERCRED). Call at bind or adoption.
void require_credential_support(const Address& server_address, int socket_type,
                                const CredentialAllowList& allowed);

// True when the peer on `fd` may be served. Otherwise (its credentials are not allowed, or
// cannot be read) logs a warning naming the peer and why, counts stats.denied_credentials and
// stats.rejected, and returns false: the caller closes the connection. Never throws.
bool admit_credentials(int fd, const CredentialAllowList& allowed, const Address& server_address,
                       ServerStats& stats) noexcept;

}  // namespace sockserv::detail
