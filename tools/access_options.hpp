// SPDX-License-Identifier: MIT
// The "who may connect" options of `sockserv serve` and the AccessPolicy they describe.
#pragma once

#include <sockserv/access/access_policy.hpp>

#include <CLI/CLI.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace sockserv::tool {

struct AccessOptions {
  std::vector<std::string> allow;       // --allow CIDR (repeatable)
  std::vector<std::string> deny;        // --deny CIDR (repeatable)
  std::size_t max_per_client = 0;       // --max-per-client N
  std::string rate_per_client;          // --rate-per-client N[/BURST]
  int client_prefix_v6 = 64;            // --client-prefix-v6 BITS
  std::vector<std::string> proxy_from;  // --proxy-from CIDR (repeatable)
};

void add_access_options(CLI::App& cmd, AccessOptions& o);

// The policy the options describe, or nullptr when they set nothing. Throws
// std::invalid_argument naming the option and the text that is wrong.
std::shared_ptr<AccessPolicy> build_access_policy(const AccessOptions& o);

}  // namespace sockserv::tool
