// SPDX-License-Identifier: MIT
// `sockserv serve`: one server of the framework, chosen by transport, mode and handler.
//
//   $ sockserv serve                              # upper-case echo on localhost:9999
//   listening on 127.0.0.1:9999
//
// SIGINT/SIGTERM stop it: serve_forever() returns, server_close() lets handlers finish, joins
// threads, reaps children and removes the Unix socket file, and the exit status is 0. A second
// signal while that is going on ends the process at once with status 1.
#include "builtin_handlers.hpp"
#include "commands.hpp"

#include <sockserv/error.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>
#include <sockserv/thread.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>

namespace sockserv::tool {
namespace {

enum class Mode { sync, threading, forking, async };
enum class Transport { tcp, udp, unix_stream, unix_datagram };

struct ServeOptions {
  std::string tcp = "localhost:9999";
  std::string udp;
  std::string unix_path;
  std::string unix_dgram_path;
  std::string mode_name = "sync";
  Mode mode = Mode::sync;
  std::string handler_name = "upper";
  std::size_t threads = 0;  // async: event loops (0: one per core)
};

// What run_serve needs of a server, whatever its kind (the framework's or the event loop's).
struct ServerControl {
  std::shared_ptr<void> owner;
  Address address;
  std::function<void()> serve;     // serve_forever() then server_close()
  std::function<void()> shutdown;  // thread-safe
};

template <class Server>
ServerControl control_of(std::shared_ptr<Server> server) {
  ServerControl c;
  c.address = server->server_address;
  c.serve = [s = server.get()] {
    s->serve_forever();
    s->server_close();  // finish in-flight requests, join threads, reap children
  };
  c.shutdown = [s = server.get()] { s->shutdown(); };
  c.owner = std::move(server);
  return c;
}

template <class Server>
ServerControl build(const Address& address, RequestHandlerFactory handler, Mode mode) {
  auto configure = [&](auto server) {
    // A restarted server must not fail on the previous run's TIME_WAIT connections.
    server->allow_reuse_address = true;
    server->bind_and_activate();
    return control_of(std::move(server));
  };
  switch (mode) {
    case Mode::threading:
      return configure(
          std::make_shared<ThreadingMixIn<Server>>(address, std::move(handler), false));
    case Mode::forking:
      return configure(std::make_shared<ForkingMixIn<Server>>(address, std::move(handler), false));
    default:
      return configure(std::make_shared<Server>(address, std::move(handler), false));
  }
}

template <class Server, class Handler>
ServerControl build_async(const Address& address, Handler handler, std::size_t threads) {
  auto server = std::make_shared<Server>(address, std::move(handler));
  if (threads > 0) server->threads = threads;
  return control_of(std::move(server));
}

ServerControl make_server_for(const ServeOptions& o) {
  const bool datagram = !o.udp.empty() || !o.unix_dgram_path.empty();
  if (o.mode == Mode::async) {
    if (!o.unix_path.empty()) {
      return build_async<aio::AsyncUnixStreamServer>(
          Address::parse("unix:" + o.unix_path), async_stream_handler(o.handler_name), o.threads);
    }
    if (!o.unix_dgram_path.empty()) {
      return build_async<aio::AsyncUDPServer>(Address::parse("unix:" + o.unix_dgram_path),
                                              async_datagram_handler(o.handler_name), o.threads);
    }
    if (!o.udp.empty()) {
      return build_async<aio::AsyncUDPServer>(Address::lookup(o.udp, SOCK_DGRAM),
                                              async_datagram_handler(o.handler_name), o.threads);
    }
    return build_async<aio::AsyncTCPServer>(Address::lookup(o.tcp, SOCK_STREAM),
                                            async_stream_handler(o.handler_name), o.threads);
  }
  auto handler = builtin_handler(o.handler_name, datagram);
  if (!o.unix_path.empty()) {
    return build<UnixStreamServer>(Address::parse("unix:" + o.unix_path), handler, o.mode);
  }
  if (!o.unix_dgram_path.empty()) {
    return build<UnixDatagramServer>(Address::parse("unix:" + o.unix_dgram_path), handler, o.mode);
  }
  if (!o.udp.empty()) return build<UDPServer>(Address::lookup(o.udp, SOCK_DGRAM), handler, o.mode);
  return build<TCPServer>(Address::lookup(o.tcp, SOCK_STREAM), handler, o.mode);
}

// Waits for SIGINT/SIGTERM (delivered through a signalfd, so no handler runs in a random thread)
// or for `done_fd` to become readable. Returns the signal number, or 0 when done_fd fired.
int wait_for_signal_or(int signal_fd, int done_fd) {
  pollfd fds[2] = {{signal_fd, POLLIN, 0}, {done_fd, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signal_fd, &info, sizeof info) == sizeof info)
        return static_cast<int>(info.ssi_signo);
    }
    if (fds[1].revents & (POLLIN | POLLHUP)) return 0;  // the writer closed: serving ended
  }
}

int run_serve(const ServeOptions& options) {
  // Block the stop signals before any thread starts, so every thread inherits the mask and the
  // signals wait in the signalfd.
  sigset_t stop_signals;
  ::sigemptyset(&stop_signals);
  ::sigaddset(&stop_signals, SIGINT);
  ::sigaddset(&stop_signals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signal_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  int done_pipe[2];
  if (signal_fd < 0 || ::pipe2(done_pipe, O_CLOEXEC) != 0) throw_errno("signalfd");

  auto server = make_server_for(options);
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
  if (const int sig = wait_for_signal_or(signal_fd, done_pipe[0])) {
    std::cerr << "sockserv serve: " << ::strsignal(sig) << ", shutting down" << std::endl;
    server.shutdown();
    if (wait_for_signal_or(signal_fd, done_pipe[0]) != 0) {
      std::cerr << "sockserv serve: second signal, exiting now" << std::endl;
      ::_exit(1);
    }
  }
  serving.join();
  if (serve_error) std::rethrow_exception(serve_error);
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_status) {
  auto options = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run a server until SIGINT/SIGTERM");
  auto* tcp =
      cmd->add_option("--tcp", options->tcp, "TCP address HOST:PORT ([v6]:PORT; port 0 picks one)")
          ->default_val("localhost:9999");
  auto* udp = cmd->add_option("--udp", options->udp, "UDP address HOST:PORT instead of TCP");
  auto* unix_stream =
      cmd->add_option("--unix", options->unix_path, "Unix stream socket PATH (@NAME: abstract)");
  auto* unix_dgram = cmd->add_option("--unix-dgram", options->unix_dgram_path,
                                     "Unix datagram socket PATH (@NAME: abstract)");
  udp->excludes(tcp, unix_stream, unix_dgram);
  unix_stream->excludes(tcp, unix_dgram);
  unix_dgram->excludes(tcp);
  cmd->add_option("--mode", options->mode_name,
                  "sync: one request at a time; threading: a thread per request; forking: a "
                  "process per request; async: event loops with coroutine handlers")
      ->check(CLI::IsMember({"sync", "threading", "forking", "async"}))
      ->default_val("sync");
  cmd->add_option("--threads", options->threads,
                  "async mode: number of event loops (default: one per core)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--handler", options->handler_name,
                  "upper: upper-cased reply per line; echo: bytes back; discard: drop input; "
                  "daytime: the date and time")
      ->check(CLI::IsMember({"upper", "echo", "discard", "daytime"}))
      ->default_val("upper");
  cmd->callback([options, &exit_status] {
    const std::map<std::string, Mode> modes{{"sync", Mode::sync},
                                            {"threading", Mode::threading},
                                            {"forking", Mode::forking},
                                            {"async", Mode::async}};
    options->mode = modes.at(options->mode_name);
    try {
      exit_status = run_serve(*options);
    } catch (const std::exception& e) {
      std::cerr << "sockserv serve: " << e.what() << std::endl;
      exit_status = 1;
    }
  });
}

}  // namespace sockserv::tool
