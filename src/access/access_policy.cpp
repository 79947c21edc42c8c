// SPDX-License-Identifier: MIT
#include <sockserv/access/access_policy.hpp>
#include <sockserv/log.hpp>

#include "access/log_throttle.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>

namespace sockserv {

using Clock = std::chrono::steady_clock;

std::string_view to_string(Refusal refusal) noexcept {
  switch (refusal) {
    case Refusal::none:
      return "admitted";
    case Refusal::denied:
      return "denied by the address rules";
    case Refusal::too_many_connections:
      return "over the per-client connection limit";
    case Refusal::too_fast:
      return "over the per-client connection rate";
    case Refusal::table_full:
      return "the client table is full";
    case Refusal::untrusted_proxy:
      return "a PROXY header from a peer not in the trusted ranges";
  }
  return "refused";
}

namespace {

// A client: its IPv4 address, or its IPv6 address cut to the policy's prefix.
struct ClientKey {
  int family = 0;
  std::array<std::uint8_t, 16> bytes{};
  friend bool operator==(const ClientKey&, const ClientKey&) = default;
};

struct ClientKeyHash {
  std::size_t operator()(const ClientKey& key) const noexcept {
    // FNV-1a over the bytes: the table is sized by table_size, and an attacker choosing
    // addresses to collide gains only slower lookups within that bound.
    std::uint64_t h = 1469598103934665603ULL ^ static_cast<std::uint64_t>(key.family);
    for (const auto b : key.bytes) h = (h ^ b) * 1099511628211ULL;
    return static_cast<std::size_t>(h);
  }
};

ClientKey key_of(const detail::IpBytes& ip, int ipv6_prefix) {
  ClientKey key{ip.family, ip.bytes};
  if (ip.family != AF_INET6) return key;
  const int bits = std::clamp(ipv6_prefix, 0, 128);
  for (int bit = bits; bit < 128; ++bit) {
    key.bytes[static_cast<std::size_t>(bit / 8)] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
  }
  return key;
}

}  // namespace

struct Admission::Slot {
  ClientKey key;
  std::uint32_t open = 0;  // connections admitted and not yet released
  double tokens = 0;
  Clock::time_point refilled;
  // The idle list (open == 0), most recently idle first: the eviction order.
  Slot* idle_prev = nullptr;
  Slot* idle_next = nullptr;
};

struct AccessPolicy::Table {
  mutable std::mutex mutex;
  std::unordered_map<ClientKey, Admission::Slot, ClientKeyHash> clients;
  Admission::Slot* idle_head = nullptr;
  Admission::Slot* idle_tail = nullptr;

  void idle_push(Admission::Slot& s) noexcept {
    s.idle_prev = nullptr;
    s.idle_next = idle_head;
    (idle_head ? idle_head->idle_prev : idle_tail) = &s;
    idle_head = &s;
  }
  void idle_remove(Admission::Slot& s) noexcept {
    (s.idle_prev ? s.idle_prev->idle_next : idle_head) = s.idle_next;
    (s.idle_next ? s.idle_next->idle_prev : idle_tail) = s.idle_prev;
    s.idle_prev = s.idle_next = nullptr;
  }

  detail::LogThrottle refusal_log;  // its own lock: refusals are logged outside the table's
};

AccessPolicy::AccessPolicy() : table_(std::make_unique<Table>()) {}
AccessPolicy::~AccessPolicy() = default;

Admission::Admission(Admission&& other) noexcept
    : policy_(std::exchange(other.policy_, nullptr)),
      slot_(std::exchange(other.slot_, nullptr)),
      refusal_(other.refusal_) {}

Admission& Admission::operator=(Admission&& other) noexcept {
  if (this != &other) {
    release();
    policy_ = std::exchange(other.policy_, nullptr);
    slot_ = std::exchange(other.slot_, nullptr);
    refusal_ = other.refusal_;
  }
  return *this;
}

void Admission::release() noexcept {
  if (policy_ && slot_) policy_->release(slot_);
  policy_ = nullptr;
  slot_ = nullptr;
}

bool AccessPolicy::permits(const Address& address) const noexcept {
  if (!address.is_inet()) return true;
  const auto in = [&](const std::vector<AddressRange>& ranges) {
    return std::any_of(ranges.begin(), ranges.end(),
                       [&](const AddressRange& r) { return r.contains(address); });
  };
  if (in(deny)) return false;
  return allow.empty() || in(allow);
}

bool AccessPolicy::trusts_proxy(const Address& peer) const noexcept {
  if (proxy_from.empty()) return true;
  return std::any_of(proxy_from.begin(), proxy_from.end(),
                     [&](const AddressRange& r) { return r.contains(peer); });
}

bool AccessPolicy::active() const noexcept {
  return !allow.empty() || !deny.empty() || limits.max_connections > 0 || limits.rate > 0;
}

std::size_t AccessPolicy::tracked_clients() const {
  std::lock_guard lock(table_->mutex);
  return table_->clients.size();
}

Admission AccessPolicy::admit(const Address& client) {
  if (!permits(client)) return {nullptr, nullptr, Refusal::denied};
  const bool limited = limits.max_connections > 0 || limits.rate > 0;
  if (!limited || !client.is_inet()) return {};
  const auto key = key_of(detail::ip_bytes(client), limits.ipv6_prefix);
  const double burst = limits.burst > 0 ? limits.burst : std::max(limits.rate, 1.0);
  const auto now = Clock::now();

  std::lock_guard lock(table_->mutex);
  auto& clients = table_->clients;
  auto it = clients.find(key);
  if (it == clients.end()) {
    if (clients.size() >= std::max<std::size_t>(limits.table_size, 1)) {
      Admission::Slot* oldest = table_->idle_tail;
      if (oldest == nullptr) return {nullptr, nullptr, Refusal::table_full};
      table_->idle_remove(*oldest);
      const ClientKey evicted = oldest->key;  // not a reference into the node erase() frees
      clients.erase(evicted);
    }
    it = clients.emplace(key, Admission::Slot{key, 0, burst, now}).first;
    table_->idle_push(it->second);
  }
  Admission::Slot& slot = it->second;
  if (limits.max_connections > 0 && slot.open >= limits.max_connections) {
    return {nullptr, nullptr, Refusal::too_many_connections};
  }
  if (limits.rate > 0) {
    const std::chrono::duration<double> elapsed = now - slot.refilled;
    slot.tokens = std::min(burst, slot.tokens + elapsed.count() * limits.rate);
    slot.refilled = now;
    if (slot.tokens < 1) return {nullptr, nullptr, Refusal::too_fast};
    slot.tokens -= 1;
  }
  if (slot.open++ == 0) table_->idle_remove(slot);
  return {this, &slot, Refusal::none};
}

void AccessPolicy::release(Admission::Slot* slot) noexcept {
  std::lock_guard lock(table_->mutex);
  if (--slot->open > 0) return;
  if (limits.rate > 0) {
    table_->idle_push(*slot);  // its rate state is still needed
  } else {
    const ClientKey key = slot->key;  // not a reference into the node erase() frees
    table_->clients.erase(key);       // nothing to remember about a client with none open
  }
}

void AccessPolicy::log_refusal(const Address& peer, Refusal refusal,
                               std::string_view where) const noexcept {
  try {
    const auto admitted = table_->refusal_log.admit();
    if (!admitted) return;
    const std::uint64_t left_out = *admitted;
    std::string line = "refused " + peer.to_string() + " on " + std::string(where) + ": " +
                       std::string(to_string(refusal));
    if (left_out > 0) {
      line += " (and " + std::to_string(left_out) + " more refusals not logged in the last second)";
    }
    log(LogLevel::warning, line);
  } catch (...) {  // no memory for the line: the refusal is still counted
  }
}

}  // namespace sockserv
