// SPDX-License-Identifier: MIT
// One request per connection, closed after the response: read the head (at most
// max_request_head bytes, each wait bounded by the server's connection_timeout), answer
// GET /metrics with 200, another path with 404, anything else with 400 or 405.
#include "metrics_endpoint.hpp"

#include <sockserv/handlers.hpp>
#include <sockserv/log.hpp>
#include <sockserv/metrics/prometheus.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>
#include <sockserv/thread.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

namespace sockserv::tool {
namespace {

constexpr std::size_t max_request_head = 8192;
constexpr std::size_t max_scrapes_at_once = 4;

std::string response(std::string_view status, std::string_view content_type,
                     std::string_view body) {
  std::string out = "HTTP/1.1 ";
  out.append(status)
      .append("\r\nContent-Type: ")
      .append(content_type)
      .append("\r\nContent-Length: ")
      .append(std::to_string(body.size()))
      .append("\r\nConnection: close\r\n\r\n")
      .append(body);
  return out;
}

// The request head, up to its blank line; "" when the client closed first or sent too much.
std::string read_head(Request& request) {
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos && head.find("\n\n") == std::string::npos) {
    if (head.size() >= max_request_head) return "";
    const std::string chunk = request.socket().recv(max_request_head - head.size());
    if (chunk.empty()) return "";
    head += chunk;
  }
  return head;
}

std::string answer(std::string_view head, const std::function<ServerStatsSnapshot()>& snapshot) {
  const auto line_end = head.find_first_of("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto first_space = line.find(' ');
  const auto second_space =
      line.find(' ', first_space == std::string_view::npos ? 0 : first_space + 1);
  if (first_space == std::string_view::npos || second_space == std::string_view::npos ||
      !line.substr(second_space + 1).starts_with("HTTP/1.")) {
    return response("400 Bad Request", "text/plain", "bad request\n");
  }
  const std::string_view method = line.substr(0, first_space);
  std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
  target = target.substr(0, target.find('?'));  // a query string changes nothing
  if (target != "/metrics") return response("404 Not Found", "text/plain", "not found\n");
  if (method != "GET" && method != "HEAD") {
    return response("405 Method Not Allowed", "text/plain", "method not allowed\n");
  }
  std::string ok =
      response("200 OK", metrics::content_type, metrics::render_prometheus(snapshot()));
  if (method == "HEAD") ok.erase(ok.find("\r\n\r\n") + 4);
  return ok;
}

}  // namespace

struct MetricsEndpoint::State {
  State(const Address& address, std::function<ServerStatsSnapshot()> snapshot)
      : get_snapshot(std::move(snapshot)),
        server(address, [this](Request& request, const Address&, BaseServer&) { serve(request); }) {
  }

  void serve(Request& request) {
    const std::string head = read_head(request);
    const std::string reply = head.empty()
                                  ? response("400 Bad Request", "text/plain", "bad request\n")
                                  : answer(head, get_snapshot);
    request.socket().sendall(reply);
  }

  std::function<ServerStatsSnapshot()> get_snapshot;
  ThreadingMixIn<TCPServer> server;
  Thread thread;
};

MetricsEndpoint::MetricsEndpoint(const Address& address,
                                 std::function<ServerStatsSnapshot()> snapshot)
    : state_(std::make_unique<State>(address, std::move(snapshot))) {
  auto& server = state_->server;
  server.max_connections = max_scrapes_at_once;
  server.connection_timeout = std::chrono::seconds(5);
  server.idle_timeout = std::chrono::seconds(5);
  state_->thread = Thread([&server] { server.serve_forever(); });
}

MetricsEndpoint::~MetricsEndpoint() {
  state_->server.shutdown();
  state_->thread.join();
  state_->server.server_close();
}

const Address& MetricsEndpoint::address() const noexcept { return state_->server.server_address; }

}  // namespace sockserv::tool
