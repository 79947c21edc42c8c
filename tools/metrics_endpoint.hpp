// SPDX-License-Identifier: MIT
// `sockserv serve --metrics ADDRESS`: a tiny HTTP/1.1 responder, on threads of its own, that
// answers GET /metrics with the served server's counters in Prometheus' text format.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/stats.hpp>

#include <functional>
#include <memory>

namespace sockserv::tool {

class MetricsEndpoint {
 public:
  // Binds `address` (throws when it cannot) and starts serving; `snapshot` is called from the
  // endpoint's threads, once per scrape.
  MetricsEndpoint(const Address& address, std::function<ServerStatsSnapshot()> snapshot);
  // Stops accepting, waits for the scrape in flight and joins the threads.
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // The bound address (port 0 resolved).
  const Address& address() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sockserv::tool
