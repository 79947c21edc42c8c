// SPDX-License-Identifier: MIT
/// @file
/// AccessPolicy: who may connect, decided right after accept() and before a byte is read or a
/// thread, child or task is spent on the peer (nginx's allow/deny, limit_conn and limit_req,
/// HAProxy's ACLs and stick tables, set_real_ip_from).
///
/// ```
///   auto policy = std::make_shared<sockserv::AccessPolicy>();
///   policy->deny.push_back(sockserv::AddressRange::parse("192.0.2.0/24"));
///   policy->limits.max_connections = 10;        // per client address (IPv6: per /64)
///   policy->limits.rate = 5;                    // new connections per second per client
///   server.access_policy = policy;              // every server family has this member
/// ```
///
/// Rules: a peer in a `deny` range is refused; with a non-empty `allow`, so is a peer in none of
/// its ranges (deny wins over allow). Limits, per client (an IPv4 address, or an IPv6 address cut
/// to limits.ipv6_prefix bits): at most max_connections at once, and new connections at `rate`
/// per second with bursts of `burst` (a token bucket). 0 turns a limit off. Rules and limits
/// apply to IP peers; Unix-socket peers are never refused by them.
/// With the PROXY protocol, the connecting peer must be in `proxy_from` (when it is not empty)
/// and the rules and limits apply to the client the header names.
///
/// The per-client table holds at most limits.table_size clients: a new client takes the place of
/// the one idle longest (no connection open; its rate state is forgotten), and when every
/// client in it has a connection open, a new client is refused (Refusal::table_full).
///
/// Thread safety: set the members before the server starts; admit() may then be called from any
/// thread (one mutex, taken only when a limit is on). The policy must outlive every Admission.
#pragma once

#include <sockserv/access/address_range.hpp>
#include <sockserv/address.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace sockserv {

/// Why AccessPolicy::admit() refused a client (or none).
enum class Refusal : std::uint8_t {
  none,                  ///< Admitted.
  denied,                ///< A deny rule, or not on the allow list.
  too_many_connections,  ///< The client already has limits.max_connections open.
  too_fast,              ///< The client's new-connection rate is over limits.rate.
  table_full,            ///< The client table is full of clients with connections open.
  untrusted_proxy,       ///< A PROXY header from a peer outside proxy_from.
};
/// A short phrase for logs ("denied by the address rules", "the client table is full", ...).
std::string_view to_string(Refusal refusal) noexcept;

/// Per-client limits of an AccessPolicy; 0 turns a limit off.
struct ClientLimits {
  std::size_t max_connections = 0;  ///< At once, per client; 0: no limit (--max-per-client).
  double rate = 0;                  ///< New connections per second, per client; 0: no limit.
  double burst = 0;                 ///< The bucket's size; 0: max(rate, 1) (--rate-per-client N/B).
  int ipv6_prefix = 64;             ///< Bits of an IPv6 address that name a client.
  std::size_t table_size = 65536;   ///< Clients tracked at once (about 100 bytes each).
};

class AccessPolicy;

/// The outcome of AccessPolicy::admit(): true when admitted. An admitted client's connection
/// counts against its limit until the Admission is destroyed (or moved from). Move-only.
/// @threadsafety One thread at a time; it may be destroyed on any thread.
class Admission {
 public:
  /// An admission that holds no place (Refusal::none, counted nowhere).
  Admission() noexcept = default;
  /// Takes over `other`'s place; `other` then holds none.
  Admission(Admission&& other) noexcept;
  /// Gives back this admission's place, then takes over `other`'s.
  Admission& operator=(Admission&& other) noexcept;
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;
  /// Gives the client's place back to the policy.
  ~Admission() { release(); }

  /// True when the client was admitted.
  explicit operator bool() const noexcept { return refusal_ == Refusal::none; }
  /// Why the client was refused; Refusal::none when admitted.
  Refusal refusal() const noexcept { return refusal_; }

 private:
  friend class AccessPolicy;
  struct Slot;
  Admission(AccessPolicy* policy, Slot* slot, Refusal refusal) noexcept
      : policy_(policy), slot_(slot), refusal_(refusal) {}
  void release() noexcept;

  AccessPolicy* policy_ = nullptr;
  Slot* slot_ = nullptr;
  Refusal refusal_ = Refusal::none;
};

/// Who may connect: allow/deny ranges, per-client limits, trusted PROXY senders (see the file's
/// description for the rules). Not copyable; servers share one through a std::shared_ptr.
/// The policy must outlive every Admission it made.
/// @threadsafety Set the members before the server starts; admit(), permits(), log_refusal()
/// and the other const members may then be called from any thread.
class AccessPolicy {
 public:
  /// A policy that admits everyone (no ranges, no limits).
  AccessPolicy();
  ~AccessPolicy();
  AccessPolicy(const AccessPolicy&) = delete;
  AccessPolicy& operator=(const AccessPolicy&) = delete;

  /// When not empty, only peers in one of these ranges are admitted.
  std::vector<AddressRange> allow;
  /// Peers in these ranges are refused (deny wins over allow).
  std::vector<AddressRange> deny;
  /// Per-client limits (all off by default).
  ClientLimits limits;
  /// Peers whose PROXY headers are believed. Empty: any peer's (as before; the command warns).
  std::vector<AddressRange> proxy_from;

  /// The rules alone: false when `address` is denied. Non-IP addresses are always permitted.
  bool permits(const Address& address) const noexcept;
  /// The rules, then the limits, for a client: an Admission that holds the client's place.
  /// A refusal is returned (Admission::refusal()), never thrown.
  Admission admit(const Address& client);
  /// False when the server reads PROXY headers and `peer` may not send one.
  bool trusts_proxy(const Address& peer) const noexcept;
  /// Whether admit() can refuse anyone (a server skips the call otherwise).
  bool active() const noexcept;
  /// Clients in the table now.
  std::size_t tracked_clients() const;

  /// One warning line for a refusal, at most one per second per policy; the refusals left out
  /// meanwhile are counted in the next line. `where` names the server ("127.0.0.1:9999").
  void log_refusal(const Address& peer, Refusal refusal, std::string_view where) const noexcept;

 private:
  friend class Admission;
  struct Table;
  void release(Admission::Slot* slot) noexcept;

  std::unique_ptr<Table> table_;
};

}  // namespace sockserv
