// SPDX-License-Identifier: MIT
/// @file
/// ServerStats: the counters every sockserv server keeps (its `stats` member). Updated with
/// relaxed atomics from any thread; read a consistent-enough copy with snapshot().
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace sockserv {

/// A copy of a server's counters at one moment (ServerStats::snapshot()), as plain numbers.
struct ServerStatsSnapshot {
  std::uint64_t accepted = 0;        ///< connections (or datagrams) taken
  std::uint64_t active = 0;          ///< requests being handled now
  std::uint64_t rejected = 0;        ///< refused: verify_request, a bad PROXY header, over a limit
  std::uint64_t timed_out = 0;       ///< ended by a timeout
  std::uint64_t bytes_in = 0;        ///< read through the library's readers (rfile, Connection)
  std::uint64_t bytes_out = 0;       ///< written through wfile / Connection
  std::uint64_t handler_errors = 0;  ///< exceptions that reached handle_error
  std::uint64_t accept_errors = 0;   ///< accept/recvfrom failures (EMFILE, ...)
  std::uint64_t tls_handshakes = 0;  ///< TLS handshakes completed
  std::uint64_t tls_failures = 0;    ///< TLS handshakes failed or timed out (connection closed)
  std::uint64_t dropped = 0;  ///< datagram replies dropped: send queue full, peer stuck or gone
  /// Of `rejected`, refused by the access policy (access/access_policy.hpp): `denied` by its
  /// address rules or for a PROXY header from an untrusted peer, `limited` by a per-client limit.
  /// @{
  std::uint64_t denied = 0;
  std::uint64_t limited = 0;
  /// @}
  /// Requests ended because the peer went away: reset, broken pipe, closed mid-message, or TLS
  /// ended without close_notify (logged at info, not through handle_error).
  std::uint64_t peer_resets = 0;
  /// Unix peers closed after accept because their credentials are not on the allow list (also
  /// counted in rejected).
  std::uint64_t denied_credentials = 0;
  /// "accepted=12 active=1 rejected=0 timed_out=0 bytes_in=... handler_errors=0 accept_errors=0",
  /// then "tls_handshakes=... tls_failures=..." when a TLS connection was seen and "dropped=..."
  /// when a reply was dropped, "denied=... limited=..." when the access policy refused someone,
  /// "peer_resets=..." when a peer went away mid-request, "denied_credentials=..." when a Unix
  /// peer was refused.
  std::string to_string() const;
};

/// A server's live counters (the `stats` member of every server, blocking and async): the same
/// fields as ServerStatsSnapshot, as atomics the server updates while it runs.
/// @threadsafety Safe from any thread: every update is a relaxed atomic add.
struct ServerStats {
  /// The live counters; ServerStatsSnapshot says what each one counts.
  /// @{
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> timed_out{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> handler_errors{0};
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::uint64_t> tls_handshakes{0};
  std::atomic<std::uint64_t> tls_failures{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> denied{0};
  std::atomic<std::uint64_t> limited{0};
  std::atomic<std::uint64_t> peer_resets{0};
  std::atomic<std::uint64_t> denied_credentials{0};
  /// @}

  /// Adds `n` to `counter` with a relaxed atomic add (a counter orders nothing).
  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
  /// Counters other processes add into: a forking server's children, through memory shared with
  /// them (ForkingMixIn sets it). snapshot() adds them in; nullptr for every other server.
  ServerStats* from_children = nullptr;

  /// Reads every counter once, plus from_children's; each value is exact, the set is not one
  /// atomic picture.
  ServerStatsSnapshot snapshot() const noexcept;
  /// Adds to `into` what each counter (but `active`, a level, not a count) gained since
  /// `before`, a snapshot of this object taken while from_children was nullptr.
  void add_gains_since(const ServerStatsSnapshot& before, ServerStats& into) const noexcept;
};

}  // namespace sockserv
