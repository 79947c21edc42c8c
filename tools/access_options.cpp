// SPDX-License-Identifier: MIT
#include "access_options.hpp"

#include <charconv>
#include <stdexcept>
#include <string_view>

namespace sockserv::tool {

void add_access_options(CLI::App& cmd, AccessOptions& o) {
  cmd.add_option("--allow", o.allow,
                 "Only clients in this CIDR range (repeatable; IPv4 rules match IPv4-mapped "
                 "IPv6 peers); --deny wins")
      ->take_all();
  cmd.add_option("--deny", o.deny, "Refuse clients in this CIDR range (repeatable)")->take_all();
  cmd.add_option("--max-per-client", o.max_per_client,
                 "Connections one client may hold at once (IPv6: per --client-prefix-v6 "
                 "block); over it a new one is closed at once")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--rate-per-client", o.rate_per_client,
                 "N[/BURST]: new connections per second one client may open (a token bucket "
                 "of BURST, default N)");
  cmd.add_option("--client-prefix-v6", o.client_prefix_v6,
                 "Bits of an IPv6 address that name one client for the per-client limits")
      ->default_val(64)
      ->check(CLI::Range(1, 128));
  cmd.add_option("--proxy-from", o.proxy_from,
                 "With --proxy-protocol: the CIDR ranges PROXY headers are believed from "
                 "(repeatable); a connection from elsewhere is closed before reading")
      ->take_all();
}

namespace {

std::vector<AddressRange> ranges(const std::vector<std::string>& texts, std::string_view flag) {
  std::vector<AddressRange> out;
  out.reserve(texts.size());
  for (const auto& text : texts) {
    try {
      out.push_back(AddressRange::parse(text));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(flag) + ": " + e.what());
    }
  }
  return out;
}

double parse_number(std::string_view text, std::string_view what) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value <= 0) {
    throw std::invalid_argument("--rate-per-client: " + std::string(what) + " \"" +
                                std::string(text) + "\" is not a positive number");
  }
  return value;
}

}  // namespace

std::shared_ptr<AccessPolicy> build_access_policy(const AccessOptions& o) {
  auto policy = std::make_shared<AccessPolicy>();
  policy->allow = ranges(o.allow, "--allow");
  policy->deny = ranges(o.deny, "--deny");
  policy->proxy_from = ranges(o.proxy_from, "--proxy-from");
  policy->limits.max_connections = o.max_per_client;
  policy->limits.ipv6_prefix = o.client_prefix_v6;
  if (!o.rate_per_client.empty()) {
    const std::string_view text = o.rate_per_client;
    const auto slash = text.find('/');
    policy->limits.rate = parse_number(text.substr(0, slash), "the rate");
    if (slash != std::string_view::npos) {
      policy->limits.burst = parse_number(text.substr(slash + 1), "the burst");
    }
  }
  if (!policy->active() && policy->proxy_from.empty()) return nullptr;
  return policy;
}

}  // namespace sockserv::tool
