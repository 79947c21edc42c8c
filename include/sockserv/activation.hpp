// SPDX-License-Identifier: MIT
/// @file
/// Taking listening sockets from whoever started the process, instead of binding:
///
/// ```
///   systemd socket activation: LISTEN_PID is our pid, LISTEN_FDS = n, the sockets are fds 3..3+n-1
///                              (sd_listen_fds(3), written here without a libsystemd dependency);
///   inetd style:               fd 0 is a listening socket.
/// ```
///
/// ```
///   auto inherited = sockserv::listen_fds();
///   TCPServer server(inherited.front().getsockname(), handler, false);
///   server.adopt_socket(std::move(inherited.front()));
/// ```
#pragma once

#include <sockserv/socket.hpp>

#include <optional>
#include <vector>

namespace sockserv {

/// The sockets systemd passed to this process, in order; empty when it passed none (or passed
/// them to another pid). With `unset_environment`, LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES
/// are removed so child processes do not take them too. The descriptors are made close-on-exec.
/// @throws SocketError when one of the passed descriptors is not a socket.
/// @threadsafety Call once, at start-up: it reads and changes the environment.
std::vector<Socket> listen_fds(bool unset_environment = true);

/// fd 0 as a Socket, when it is a listening socket (inetd's "wait" mode); nullopt otherwise.
/// The socket is moved to a new close-on-exec descriptor and fd 0 is pointed at /dev/null, so
/// a later open() does not land on it by accident.
/// @throws SocketError when the copied descriptor cannot be adopted.
std::optional<Socket> inetd_socket();

}  // namespace sockserv
