// SPDX-License-Identifier: MIT
// The options of `sockserv serve`, and the server they describe, whatever its kind.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/stats.hpp>

#include "access_options.hpp"
#include "tls_options.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace sockserv::tool {

struct ServeOptions {
  std::string tcp = "localhost:9999";
  std::string udp;
  std::string unix_path;
  std::string unix_dgram_path;
  std::string mode = "sync";  // sync | threading | pool | forking | async
  std::string handler = "upper";
  std::size_t threads = 0;          // async: event loops (0: one per core)
  std::size_t pool = 16;            // pool: worker threads
  std::size_t max_connections = 0;  // 0: the library's default for the mode
  // Datagram servers, every mode: larger datagrams are dropped and logged. 65,507 is the
  // largest UDP payload over IPv4.
  std::size_t max_packet_size = 65507;
  double timeout = 30;        // seconds a request in progress may stall; 0: no limit
  double idle_timeout = 600;  // seconds a connection may wait for its next request; 0: no limit
  double grace = 10;          // seconds in-flight requests get at shutdown
  // Seconds a new TCP connection may stay silent before a thread or child is spent on it
  // (TCP_DEFER_ACCEPT); unset: 10 in forking mode with a client-first handler, else off.
  std::optional<double> first_bytes_timeout;
  double stats_interval = 0;  // seconds between counter reports; 0: none
  std::string metrics;        // HOST:PORT of the Prometheus endpoint ("": none)
  bool reuse_port = false;
  bool listener_per_loop = false;  // async: a SO_REUSEPORT socket per event loop
  std::string backend;             // async: epoll | poll | io_uring ("": the library's choice)
  bool proxy_protocol = false;
  bool inetd = false;
  std::string log_level = "info";
  std::string log_format = "text";  // text | json: one JSON object per line
  ServerTlsOptions tls;
  AccessOptions access;
  // Unix sockets: the socket file's mode (octal text, "" keeps the umask's) and owner
  // (USER[:GROUP], "" keeps ours); the peers served (SO_PEERCRED uid or gid; empty: all).
  std::string unix_mode;
  std::string unix_owner;
  std::vector<uid_t> allow_uids;
  std::vector<gid_t> allow_gids;
  // USER[:GROUP] to become once bound and before serving ("": stay).
  std::string user;
};

// What run_serve needs of a server: the framework's and the event loop's alike.
struct ServerControl {
  std::shared_ptr<void> owner;
  Address address;
  // serve_forever(), then the listener stops listening, then server_close() (drain, join, reap).
  std::function<void()> serve;
  // Thread-safe. Returns when serving has stopped: at once for the threading, pool and forking
  // servers; after the request in flight (sync) or the drain (async). An async server's listener
  // stops listening at once.
  std::function<void()> shutdown;
  std::function<std::string()> stats;
  std::function<ServerStatsSnapshot()> snapshot;  // the same counters, for --metrics
  // Rereads the TLS files into a new context and swaps it in (SIGHUP); empty without TLS.
  // Throws when a file fails to load: the old context stays.
  std::function<void()> reload;
};

// Builds, binds (or adopts a socket from systemd / inetd) and configures the server. Throws on
// failure.
ServerControl make_server(const ServeOptions& options);

}  // namespace sockserv::tool
