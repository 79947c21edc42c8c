// SPDX-License-Identifier: MIT
/// @file
/// Who may connect to a Unix socket. Two checks, both Linux's own:
///   - the socket file's mode and owner, which the kernel checks at connect() (write permission
///     on the file is needed): set_socket_file_permissions(), applied by the servers after bind()
///     and before listen(), so no client can connect while the file has the default mode;
///   - the peer's credentials (SO_PEERCRED: the pid, uid and gid the peer had when it connected),
///     which a server checks right after accept() against a CredentialAllowList, before any byte
///     is read and before a thread, child process or task is spent on the connection.
///
/// Handlers read the credentials with request.peer_credentials() (blocking servers) or
/// conn.peer_credentials() (aio::Connection); peer_credentials(sock) works on any connected Unix
/// stream socket, socketpair() ones included.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace sockserv {

/// The peer of a Unix stream socket, as SO_PEERCRED reports it: fixed when the peer called
/// connect() (or socketpair()), so a later setuid() by the peer does not change it.
struct PeerCredentials {
  pid_t pid = 0;                       ///< the peer's process id
  uid_t uid = static_cast<uid_t>(-1);  ///< the peer's effective user id
  gid_t gid = static_cast<gid_t>(-1);  ///< the peer's effective group id
  /// "pid=1234 uid=1000 gid=1000" (what `sockserv serve --handler whoami` replies).
  std::string to_string() const;
};

/// SO_PEERCRED of a connected Unix stream socket (given as a Socket or a descriptor).
/// @throws SocketError with EAFNOSUPPORT for a socket of another family (TCP has no such
///         credentials), with the errno of getsockopt otherwise.
/// @python sock.getsockopt(SOL_SOCKET, SO_PEERCRED, struct.calcsize("3i")), unpacked
/// @{
PeerCredentials peer_credentials(const Socket& sock);
PeerCredentials peer_credentials(int fd);
/// @}

/// A Unix stream server's allow list. Empty (the default): every peer the file's permissions let
/// in is served. Otherwise a peer is served when its uid is in `uids` OR its gid is in `gids`
/// (the gid SO_PEERCRED reports: the peer's effective group, not its supplementary groups);
/// any other peer is closed right after accept, logged and counted (stats.denied_credentials).
struct CredentialAllowList {
  std::vector<uid_t> uids;  ///< user ids served
  std::vector<gid_t> gids;  ///< (effective) group ids served

  /// True when both lists are empty: every peer is allowed.
  bool empty() const noexcept { return uids.empty() && gids.empty(); }
  /// True when the list is empty or names the peer's uid or gid.
  bool allows(const PeerCredentials& peer) const noexcept;
};

/// The socket file's mode and owner (nullopt: leave as bind() made it: the mode from the umask,
/// the process's uid and gid).
struct SocketFilePermissions {
  std::optional<mode_t> mode;  ///< e.g. 0660
  std::optional<uid_t> owner;  ///< the file's new owner
  std::optional<gid_t> group;  ///< the file's new group

  /// True when nothing is to change.
  bool empty() const noexcept { return !mode && !owner && !group; }
};

/// chown(2) then chmod(2) of the socket file at `address` (a Unix path); does nothing when
/// `permissions` is empty. Call between bind() and listen(); the servers do it for their
/// `socket_file_permissions`.
/// @throws std::invalid_argument for an abstract name or a non-Unix address (no file).
/// @throws SocketError when a call fails (chown needs root or CAP_CHOWN to give the file away).
/// @python os.chown and os.chmod of the path
void set_socket_file_permissions(const Address& address, const SocketFilePermissions& permissions);

}  // namespace sockserv
