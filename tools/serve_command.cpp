// SPDX-License-Identifier: MIT
// `sockserv serve`: one server of the framework, chosen by transport, mode and handler.
//
//   $ sockserv serve                              # upper-case echo on localhost:9999
//   listening on 127.0.0.1:9999
//
// SIGINT/SIGTERM stop it gracefully: no new connections, in-flight requests get --grace seconds
// to finish, then what is left is cut; threads are joined, children reaped, the Unix socket file
// removed, and the exit status is 0. A second signal meanwhile ends the process at once (1).
#include "commands.hpp"
#include "metrics_endpoint.hpp"
#include "serve_options.hpp"

#include <sockserv/error.hpp>
#include <sockserv/log.hpp>
#include <sockserv/privileges.hpp>
#include <sockserv/thread.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace sockserv::tool {
namespace {

// Waits for SIGINT/SIGTERM/SIGHUP (through a signalfd, so no handler runs in a random thread), for
// `done_fd` to close, or for `timeout_ms` (-1: no limit). Returns the signal, 0 when done_fd
// closed, -1 on timeout.
int wait_for_event(int signal_fd, int done_fd, int timeout_ms) {
  pollfd fds[2] = {{signal_fd, POLLIN, 0}, {done_fd, POLLIN, 0}};
  for (;;) {
    const int n = ::poll(fds, 2, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (n == 0) return -1;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signal_fd, &info, sizeof info) == sizeof info) {
        return static_cast<int>(info.ssi_signo);
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP)) return 0;  // the writer closed: serving ended
  }
}

// A line for stderr whatever --log-level says (the metrics address, a fatal error), in the
// --log-format chosen: in json, a log shipper reading stderr sees nothing but JSON lines.
void tell_stderr(LogLevel level, const std::string& message) {
  if (log_format() == LogFormat::json) {
    std::cerr << format_log_line(LogFormat::json, std::chrono::system_clock::now(), level, message)
              << std::flush;
  } else {
    std::cerr << message << std::endl;
  }
}

// SIGHUP: rereads the TLS files into a new context; a file that fails keeps the old one.
void reload(const ServerControl& server) {
  if (!server.reload) {
    log(LogLevel::info, "sockserv serve: SIGHUP: nothing to reload (no TLS)");
    return;
  }
  try {
    server.reload();
    log(LogLevel::info, "sockserv serve: SIGHUP: TLS certificates, keys and ticket keys reloaded");
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("sockserv serve: SIGHUP: reload failed, keeping the old TLS "
                                     "context: ") +
                             e.what());
  }
}

// --user's account, looked up; nullopt without --user. Throws std::invalid_argument.
std::optional<UserGroup> user_to_become(const ServeOptions& options) {
  if (options.user.empty()) return std::nullopt;
  try {
    return lookup_user(options.user);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("--user " + options.user + ": " + e.what());
  }
}

// --metrics: the endpoint, serving from now on (nullptr without the option). It binds after the
// privilege drop, so a port under 1024 needs the capability kept. Its address goes to stderr:
// stdout's first line stays the "listening on" banner.
std::unique_ptr<MetricsEndpoint> start_metrics(const ServeOptions& options,
                                               const ServerControl& server) {
  if (options.metrics.empty()) return nullptr;
  auto metrics = std::make_unique<MetricsEndpoint>(Address::lookup(options.metrics, SOCK_STREAM),
                                                   server.snapshot);
  tell_stderr(LogLevel::info, "metrics on " + metrics->address().to_string());
  return metrics;
}

int run_serve(const ServeOptions& options) {
  static const std::map<std::string, LogLevel> levels{{"debug", LogLevel::debug},
                                                      {"info", LogLevel::info},
                                                      {"warning", LogLevel::warning},
                                                      {"error", LogLevel::error}};
  set_log_level(levels.at(options.log_level));
  set_log_format(options.log_format == "json" ? LogFormat::json : LogFormat::text);
  // Block the stop signals before any thread starts, so every thread inherits the mask and the
  // signals wait in the signalfd.
  sigset_t stop_signals;
  ::sigemptyset(&stop_signals);
  ::sigaddset(&stop_signals, SIGINT);
  ::sigaddset(&stop_signals, SIGTERM);
  ::sigaddset(&stop_signals, SIGHUP);  // reload the TLS files
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signal_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  int done_pipe[2];
  if (signal_fd < 0 || ::pipe2(done_pipe, O_CLOEXEC) != 0) throw_errno("signalfd");

  // The user is looked up before binding: an unknown one stops here, with nothing bound.
  const std::optional<UserGroup> user = user_to_become(options);
  auto server = make_server(options);
  if (user) {
    // Bound (port 443, a root-owned socket directory) as we started; nothing is served until
    // the drop has worked. A failure throws: the server is closed and the command exits 1.
    drop_privileges(*user);
    log(LogLevel::info, "sockserv serve: running as " + options.user + " (" + user->to_string() +
                            ", no supplementary groups)");
  }
  auto metrics = start_metrics(options, server);
  std::cout << "listening on " << server.address.to_string() << std::endl;

  std::exception_ptr serve_error;
  Thread serving([&] {
    try {
      server.serve();
    } catch (...) {
      serve_error = std::current_exception();
    }
    ::close(done_pipe[1]);
  });
  const int stats_ms = static_cast<int>(options.stats_interval * 1000);
  int event;
  while ((event = wait_for_event(signal_fd, done_pipe[0], stats_ms > 0 ? stats_ms : -1)) < 0 ||
         event == SIGHUP) {
    if (event == SIGHUP) {
      reload(server);
    } else {
      log(LogLevel::info, "stats " + server.stats());
    }
  }
  if (event > 0) {
    std::ostringstream grace;
    grace << options.grace;  // "10", "0.5": not to_string's "10.000000"
    log(LogLevel::info, std::string("sockserv serve: ") + ::strsignal(event) +
                            ", shutting down (grace " + grace.str() + " s)");
    // shutdown() may wait for the request in flight (sync) or the whole drain (async): it runs
    // on its own thread, so this one stays free to act on a second signal at once.
    Thread stopping([&server] { server.shutdown(); });
    while ((event = wait_for_event(signal_fd, done_pipe[0], -1)) < 0 || event == SIGHUP) {
    }
    if (event > 0) {
      log(LogLevel::warning, "sockserv serve: second signal, exiting now");
      ::_exit(1);
    }
  }
  serving.join();
  metrics.reset();  // the endpoint stops with the server
  if (options.stats_interval > 0) log(LogLevel::info, "stats " + server.stats());
  if (serve_error) std::rethrow_exception(serve_error);
  return 0;
}

void add_log_options(CLI::App& cmd, ServeOptions& o) {
  cmd.add_option("--log-level", o.log_level, "debug | info | warning | error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->default_val("info");
  cmd.add_option("--log-format", o.log_format,
                 "text: 'TIME LEVEL message' lines; json: one JSON object per line, "
                 "{\"time\", \"level\", \"message\"}, for log shippers (docs/OPERATIONS.md, Logs)")
      ->check(CLI::IsMember({"text", "json"}))
      ->default_val("text");
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_status) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run a server until SIGINT/SIGTERM");
  auto* tcp =
      cmd->add_option("--tcp", o->tcp, "TCP address HOST:PORT, [V6]:PORT (port 0 picks one)")
          ->default_val("localhost:9999");
  auto* udp = cmd->add_option("--udp", o->udp, "UDP address HOST:PORT instead of TCP");
  auto* unix_stream =
      cmd->add_option("--unix", o->unix_path, "Unix stream socket PATH (@NAME: abstract)");
  auto* unix_dgram = cmd->add_option("--unix-dgram", o->unix_dgram_path,
                                     "Unix datagram socket PATH (@NAME: abstract)");
  udp->excludes(tcp, unix_stream, unix_dgram);
  unix_stream->excludes(tcp, unix_dgram);
  unix_dgram->excludes(tcp);
  cmd->add_option("--mode", o->mode,
                  "sync: one request at a time; threading: a thread per request; pool: a "
                  "bounded thread pool; forking: a process per request; async: event loops "
                  "with coroutine handlers")
      ->check(CLI::IsMember({"sync", "threading", "pool", "forking", "async"}))
      ->default_val("sync");
  cmd->add_option(
         "--handler", o->handler,
         "upper: upper-cased reply per line; echo: bytes back; discard: drop input; "
         "daytime: the date and time; whoami: the client's address per line; tlsinfo: what "
         "TLS negotiated, per line")
      ->check(CLI::IsMember({"upper", "echo", "discard", "daytime", "whoami", "tlsinfo"}))
      ->default_val("upper");
  cmd->add_option("--threads", o->threads, "async: event loops (default: one per core)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--pool", o->pool, "pool: worker threads")
      ->default_val(16)
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-connections", o->max_connections,
                  "Requests handled at once; at the limit the server stops accepting until one "
                  "ends (default: threading 1024, async 65536, forking 256 children)");
  cmd->add_option("--max-packet-size", o->max_packet_size,
                  "Datagram servers (--udp, --unix-dgram), every mode: the largest datagram "
                  "served, in bytes; a larger one is dropped and logged (65507: the largest "
                  "UDP payload over IPv4)")
      ->default_val(65507)
      ->check(CLI::Range(1, 16 << 20));
  cmd->add_option("--timeout", o->timeout,
                  "Seconds a request in progress may stall: each wait once a request has started "
                  "arriving (each line as a whole) and each write; 0: none")
      ->default_val(30)
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--idle-timeout", o->idle_timeout,
                  "Seconds a connection may wait for its next request with nothing unread "
                  "(connection pools keep idle connections for minutes); 0: none")
      ->default_val(600)
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--first-bytes-timeout", o->first_bytes_timeout,
                  "TCP: seconds a new connection may stay silent before a thread or child is "
                  "spent on it (the kernel holds it back: TCP_DEFER_ACCEPT, rounded up to 1, 3, "
                  "7, 15, 31 s...); still silent, it is closed; 0: off (default: 10 in forking "
                  "mode, off otherwise and for the daytime handler, where the server speaks first)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--grace", o->grace, "Seconds in-flight requests get to finish at shutdown")
      ->default_val(10)
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--stats", o->stats_interval, "Log the server's counters every SECONDS")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--metrics", o->metrics,
                  "Serve the counters and process figures in Prometheus' text format at "
                  "http://ADDRESS/metrics (HOST:PORT; port 0 picks one, printed on stderr as "
                  "'metrics on ADDRESS')");
  cmd->add_flag("--reuse-port", o->reuse_port,
                "SO_REUSEPORT: several sockserv processes may serve the same port");
  cmd->add_option("--backend", o->backend,
                  "async: the event loops' I/O backend, epoll | poll | io_uring (default: "
                  "SOCKSERV_POLLER if set, else the library's choice)")
      ->check(CLI::IsMember({"epoll", "poll", "io_uring"}));
  cmd->add_flag("--listener-per-loop", o->listener_per_loop,
                "async: each event loop accepts on a SO_REUSEPORT socket of its own (default: "
                "the loops share one socket)");
  cmd->add_flag("--proxy-protocol", o->proxy_protocol,
                "Expect a PROXY protocol v1/v2 header (HAProxy, nginx) on every connection");
  cmd->add_flag("--inetd", o->inetd,
                "Serve the listening socket on fd 0 (inetd). A systemd socket (LISTEN_FDS) is "
                "used automatically.");
  cmd->add_option("--unix-mode", o->unix_mode,
                  "Unix path socket: the socket file's mode, octal (e.g. 660), set before listen");
  cmd->add_option("--unix-owner", o->unix_owner,
                  "Unix path socket: the socket file's owner USER[:GROUP] (names or ids), set "
                  "before listen");
  cmd->add_option("--allow-uid", o->allow_uids,
                  "Unix stream socket: serve only peers with this uid (SO_PEERCRED) or an "
                  "allowed gid; others are closed before the handler runs (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--allow-gid", o->allow_gids,
                  "Unix stream socket: serve only peers with this gid or an allowed uid "
                  "(repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--user", o->user,
                  "Bind, then become USER[:GROUP] (supplementary groups cleared) before serving; "
                  "a failed drop exits with an error");
  add_log_options(*cmd, *o);
  add_server_tls_options(*cmd, o->tls);
  add_access_options(*cmd, o->access);
  cmd->callback([o, &exit_status] {
    try {
      exit_status = run_serve(*o);
    } catch (const std::exception& e) {
      tell_stderr(LogLevel::error, std::string("sockserv serve: ") + e.what());
      exit_status = 1;
    }
  });
}

}  // namespace sockserv::tool
