// SPDX-License-Identifier: MIT
// From `sockserv serve` options to a configured server: transport x mode x handler, plus the
// socket inherited from systemd (LISTEN_FDS) or inetd (fd 0) when there is one.
#include "builtin_handlers.hpp"
#include "serve_options.hpp"

#include <sockserv/activation.hpp>
#include <sockserv/aio/server.hpp>
#include <sockserv/log.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/privileges.hpp>
#include <sockserv/server.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

namespace sockserv::tool {
namespace {

std::chrono::nanoseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

// The drain starts by refusing new connections: shutdown(SHUT_RD) on a stream listener takes it
// out of the kernel's listening table, so a connect gets ECONNREFUSED (or, with SO_REUSEPORT,
// goes to another process) instead of waiting in a backlog nobody accepts from any more. The
// descriptor stays open, so no loop that still watches it can meet a reused number. A datagram
// socket stays as it is: the replies of the requests in flight go out through it.
template <class Server>
void stop_listening(Server& s) {
  if (s.socket && s.socket.type() == SOCK_STREAM) ::shutdown(s.socket.fileno(), SHUT_RD);
}

template <class Server>
ServerControl control_of(std::shared_ptr<Server> server) {
  ServerControl c;
  c.address = server->server_address;
  c.serve = [s = server.get()] {
    s->serve_forever();
    stop_listening(*s);  // socketserver servers: serve_forever() has returned, nobody accepts
    s->server_close();
  };
  c.shutdown = [s = server.get()] {
    // The event-loop server's serve_forever() returns only after the drain: stop listening
    // first (its accept loops end at EINVAL).
    if constexpr (std::is_base_of_v<aio::AsyncServerBase, Server>) stop_listening(*s);
    s->shutdown();
  };
  c.stats = [s = server.get()] { return s->stats.snapshot().to_string(); };
  c.snapshot = [s = server.get()] { return s->stats.snapshot(); };
  c.owner = std::move(server);
  return c;
}

// --unix-mode and --unix-owner as the library's permissions.
SocketFilePermissions file_permissions(const ServeOptions& o) {
  SocketFilePermissions p;
  if (!o.unix_mode.empty()) {
    std::size_t used = 0;
    unsigned long mode = 0;
    try {
      mode = std::stoul(o.unix_mode, &used, 8);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != o.unix_mode.size() || mode > 07777) {
      throw std::invalid_argument("--unix-mode " + o.unix_mode + ": not an octal mode (e.g. 660)");
    }
    p.mode = static_cast<mode_t>(mode);
  }
  if (!o.unix_owner.empty()) {
    try {
      const auto who = lookup_user(o.unix_owner);
      p.owner = who.uid;
      if (who.explicit_group) p.group = who.gid;  // USER alone keeps the group, as chown(1)
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("--unix-owner " + o.unix_owner + ": " + e.what());
    }
  }
  return p;
}

// The Unix socket options, on the servers that have them; refused where they cannot apply.
template <class Server>
void apply_unix_options(Server& server, const ServeOptions& o) {
  const bool credentials = !o.allow_uids.empty() || !o.allow_gids.empty();
  if constexpr (requires { server.allowed_credentials; }) {
    server.allowed_credentials = {o.allow_uids, o.allow_gids};
  } else if (credentials) {
    throw std::invalid_argument("--allow-uid/--allow-gid need a Unix stream socket (--unix)");
  }
  auto permissions = file_permissions(o);
  if (!permissions.empty() && !server.server_address.is_unix()) {
    throw std::invalid_argument("--unix-mode/--unix-owner need a Unix socket path (--unix)");
  }
  server.socket_file_permissions = permissions;
}

// Applies the options every kind of server shares, then binds or adopts `inherited`.
template <class Server>
ServerControl start(std::shared_ptr<Server> server, const ServeOptions& o,
                    std::optional<Socket> inherited) {
  // allow_reuse_address keeps the library's default: on for streams (a restart must not trip
  // over TIME_WAIT connections), off for datagrams (another socket could bind the port).
  server->allow_reuse_port = o.reuse_port;
  if constexpr (requires { server->proxy_protocol; }) server->proxy_protocol = o.proxy_protocol;
  server->access_policy = build_access_policy(o.access);
  if (!o.access.proxy_from.empty() && !o.proxy_protocol) {
    throw std::invalid_argument("--proxy-from needs --proxy-protocol");
  }
  if (o.proxy_protocol && o.access.proxy_from.empty()) {
    log(LogLevel::warning,
        "--proxy-protocol without --proxy-from: a PROXY header is believed from any peer, so a "
        "client that reaches this port directly can claim any address");
  }
  if constexpr (requires { server->connection_timeout; }) {
    server->connection_timeout = o.timeout > 0 ? Timeout(seconds(o.timeout)) : Timeout{};
    server->idle_timeout = o.idle_timeout > 0 ? Timeout(seconds(o.idle_timeout)) : Timeout{};
  }
  if constexpr (requires { server->first_bytes_timeout; }) {
    // Forking mode: idle connections must not occupy the children (a child per connection is
    // the scarce resource), unless the server speaks first.
    const bool forking = requires { server->max_children; };
    const double wanted =
        o.first_bytes_timeout.value_or(forking && o.handler != "daytime" ? 10.0 : 0.0);
    if (wanted > 0) server->first_bytes_timeout = Timeout(seconds(wanted));
  }
  if constexpr (requires { server->max_children; }) {
    // Python's 40 children is far too few for a server on the internet: 40 slow clients fill
    // them. The command's default is 256 (docs/OPERATIONS.md, "Who may connect").
    server->max_children = o.max_connections ? o.max_connections : 256;
  } else if (o.max_connections) {
    server->max_connections = o.max_connections;
  }
  if constexpr (requires { server->pool_size; }) server->pool_size = o.pool;
  if constexpr (requires { server->threads; }) {
    // The library's default is one loop (safe for handlers sharing plain data); the command's
    // handlers share nothing, so it takes every core unless told otherwise.
    server->threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
    server->listener_per_loop = o.listener_per_loop;
    if (o.backend == "epoll") server->backend = aio::EventLoop::Backend::epoll;
    if (o.backend == "poll") server->backend = aio::EventLoop::Backend::poll;
    if (o.backend == "io_uring") server->backend = aio::EventLoop::Backend::io_uring;
  }
  if constexpr (requires { server->max_packet_size; }) server->max_packet_size = o.max_packet_size;
  server->shutdown_grace = seconds(o.grace);
  apply_unix_options(*server, o);
  std::function<void()> reload;
  constexpr bool datagram =
      std::is_base_of_v<UDPServer, Server> || std::is_base_of_v<aio::AsyncUDPServer, Server>;
  if (o.tls.enabled() && datagram) {
    throw std::invalid_argument("--tls-cert: TLS needs a stream transport (--tcp or --unix)");
  }
  if constexpr (requires { server->set_ssl_context(nullptr); }) {
    if (o.tls.enabled()) {
      server->set_ssl_context(build_server_context(o.tls));
      server->ssl_handshake_timeout = seconds(o.tls.handshake_timeout);
      reload = [s = server.get(), tls = o.tls] { s->set_ssl_context(build_server_context(tls)); };
    }
  }
  if (inherited) {
    if (!server->socket_file_permissions.empty()) {
      throw std::invalid_argument(
          "--unix-mode/--unix-owner: the socket is inherited, set its "
          "mode where it is made (systemd: SocketMode=, SocketUser=)");
    }
    server->adopt_socket(std::move(*inherited));
  } else {
    server->bind_and_activate();
  }
  auto control = control_of(std::move(server));
  control.reload = std::move(reload);
  return control;
}

template <class Server>
ServerControl build(const Address& address, bool datagram, const ServeOptions& o,
                    std::optional<Socket> inherited) {
  if (o.mode == "async") {
    using Async = std::conditional_t<std::is_same_v<Server, UDPServer> ||
                                         std::is_same_v<Server, UnixDatagramServer>,
                                     aio::AsyncUDPServer, aio::AsyncTCPServer>;
    if constexpr (std::is_same_v<Async, aio::AsyncUDPServer>) {
      return start(std::make_shared<Async>(address, async_datagram_handler(o.handler), false), o,
                   std::move(inherited));
    } else {
      return start(std::make_shared<Async>(address, async_stream_handler(o.handler), false), o,
                   std::move(inherited));
    }
  }
  auto handler = builtin_handler(o.handler, datagram);
  if (o.mode == "threading") {
    return start(std::make_shared<ThreadingMixIn<Server>>(address, handler, false), o,
                 std::move(inherited));
  }
  if (o.mode == "pool") {
    return start(std::make_shared<ThreadPoolMixIn<Server>>(address, handler, false), o,
                 std::move(inherited));
  }
  if (o.mode == "forking") {
    return start(std::make_shared<ForkingMixIn<Server>>(address, handler, false), o,
                 std::move(inherited));
  }
  return start(std::make_shared<Server>(address, handler, false), o, std::move(inherited));
}

// A socket handed to us by systemd or inetd, if any.
std::optional<Socket> inherited_socket(const ServeOptions& o) {
  if (o.inetd) {
    auto sock = inetd_socket();
    if (!sock) throw std::runtime_error("--inetd: fd 0 is not a listening socket");
    return sock;
  }
  auto fds = listen_fds();
  if (fds.empty()) return std::nullopt;
  return std::move(fds.front());
}

}  // namespace

ServerControl make_server(const ServeOptions& o) {
  if (!o.backend.empty() && o.mode != "async") {
    throw std::invalid_argument("--backend " + o.backend +
                                ": only the event loops have a backend (--mode async)");
  }
  if (auto inherited = inherited_socket(o)) {
    const Address address = inherited->getsockname();
    const bool datagram = inherited->type() == SOCK_DGRAM;
    if (address.is_unix()) {
      return datagram ? build<UnixDatagramServer>(address, true, o, std::move(inherited))
                      : build<UnixStreamServer>(address, false, o, std::move(inherited));
    }
    return datagram ? build<UDPServer>(address, true, o, std::move(inherited))
                    : build<TCPServer>(address, false, o, std::move(inherited));
  }
  if (!o.unix_path.empty()) {
    return build<UnixStreamServer>(Address::parse("unix:" + o.unix_path), false, o, {});
  }
  if (!o.unix_dgram_path.empty()) {
    return build<UnixDatagramServer>(Address::parse("unix:" + o.unix_dgram_path), true, o, {});
  }
  if (!o.udp.empty()) return build<UDPServer>(Address::lookup(o.udp, SOCK_DGRAM), true, o, {});
  return build<TCPServer>(Address::lookup(o.tcp, SOCK_STREAM), false, o, {});
}

}  // namespace sockserv::tool
