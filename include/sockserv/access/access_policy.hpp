// SPDX-License-Identifier: MIT
// AccessPolicy: who may connect, decided right after accept() and before a byte is read or a
// thread, child or task is spent on the peer (nginx's allow/deny, limit_conn and limit_req,
// HAProxy's ACLs and stick tables, set_real_ip_from).
//
//   auto policy = std::make_shared<sockserv::AccessPolicy>();
//   policy->deny.push_back(sockserv::AddressRange::parse("192.0.2.0/24"));
//   policy->limits.max_connections = 10;        // per client address (IPv6: per /64)
//   policy->limits.rate = 5;                    // new connections per second per client
//   server.access_policy = policy;              // every server family has this member
//
// Rules: a peer in a `deny` range is refused; with a non-empty `allow`, so is a peer in none of
// its ranges (deny wins over allow). Limits, per client (an IPv4 address, or an IPv6 address cut
// to limits.ipv6_prefix bits): at most max_connections at once, and new connections at `rate`
// per second with bursts of `burst` (a token bucket). 0 turns a limit off. Rules and limits
// apply to IP peers; Unix-socket peers are never refused by them.
// With the PROXY protocol, the connecting peer must be in `proxy_from` (when it is not empty)
// and the rules and limits apply to the client the header names.
//
// The per-client table holds at most limits.table_size clients: a new client takes the place of
// the one idle longest (no connection open; its rate state is forgotten), and when every
// client in it has a connection open, a new client is refused (Refusal::table_full).
//
// Thread safety: set the members before the server starts; admit() may then be called from any
// thread (one mutex, taken only when a limit is on). The policy must outlive every Admission.
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

enum class Refusal : std::uint8_t {
  none,                  // admitted
  denied,                // a deny rule, or not on the allow list
  too_many_connections,  // the client already has limits.max_connections open
  too_fast,              // the client's new-connection rate is over limits.rate
  table_full,            // the client table is full of clients with connections open
  untrusted_proxy,       // a PROXY header from a peer outside proxy_from
};
std::string_view to_string(Refusal refusal) noexcept;

struct ClientLimits {
  std::size_t max_connections = 0;  // at once, per client; 0: no limit (--max-per-client)
  double rate = 0;                  // new connections per second, per client; 0: no limit
  double burst = 0;                 // the bucket's size; 0: max(rate, 1) (--rate-per-client N/B)
  int ipv6_prefix = 64;             // bits of an IPv6 address that name a client
  std::size_t table_size = 65536;   // clients tracked at once (about 100 bytes each)
};

class AccessPolicy;

// The outcome of AccessPolicy::admit(): true when admitted. An admitted client's connection
// counts against its limit until the Admission is destroyed (or moved from). Move-only.
class Admission {
 public:
  Admission() noexcept = default;
  Admission(Admission&& other) noexcept;
  Admission& operator=(Admission&& other) noexcept;
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;
  ~Admission() { release(); }

  explicit operator bool() const noexcept { return refusal_ == Refusal::none; }
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

class AccessPolicy {
 public:
  AccessPolicy();
  ~AccessPolicy();
  AccessPolicy(const AccessPolicy&) = delete;
  AccessPolicy& operator=(const AccessPolicy&) = delete;

  std::vector<AddressRange> allow;
  std::vector<AddressRange> deny;
  ClientLimits limits;
  // Peers whose PROXY headers are believed. Empty: any peer's (as before; the command warns).
  std::vector<AddressRange> proxy_from;

  // The rules alone: false when `address` is denied.
  bool permits(const Address& address) const noexcept;
  // The rules, then the limits, for a client: an Admission that holds the client's place.
  Admission admit(const Address& client);
  // False when the server reads PROXY headers and `peer` may not send one.
  bool trusts_proxy(const Address& peer) const noexcept;
  // Whether admit() can refuse anyone (a server skips the call otherwise).
  bool active() const noexcept;
  // Clients in the table now.
  std::size_t tracked_clients() const;

  // One warning line for a refusal, at most one per second per policy; the refusals left out
  // meanwhile are counted in the next line. `where` names the server ("127.0.0.1:9999").
  void log_refusal(const Address& peer, Refusal refusal, std::string_view where) const noexcept;

 private:
  friend class Admission;
  struct Table;
  void release(Admission::Slot* slot) noexcept;

  std::unique_ptr<Table> table_;
};

}  // namespace sockserv
