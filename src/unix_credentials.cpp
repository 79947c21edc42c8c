// SPDX-License-Identifier: MIT
// SO_PEERCRED, the allow list, and the socket file's mode and owner.
#include <sockserv/error.hpp>
#include <sockserv/unix_credentials.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace sockserv {

std::string PeerCredentials::to_string() const {
  return "pid=" + std::to_string(pid) + " uid=" + std::to_string(uid) +
         " gid=" + std::to_string(gid);
}

PeerCredentials peer_credentials(int fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
    throw_errno("peer_credentials");
  }
  if (domain != AF_UNIX) {
    // Linux answers SO_PEERCRED on a TCP socket with made-up ids (the overflow uid): refuse.
    throw_error(std::make_error_code(std::errc::address_family_not_supported), "peer_credentials",
                "not a Unix socket");
  }
  ucred cred{};
  len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw_errno("peer_credentials");
  }
  return {cred.pid, cred.uid, cred.gid};
}

PeerCredentials peer_credentials(const Socket& sock) { return peer_credentials(sock.fileno()); }

bool CredentialAllowList::allows(const PeerCredentials& peer) const noexcept {
  if (empty()) return true;
  return std::find(uids.begin(), uids.end(), peer.uid) != uids.end() ||
         std::find(gids.begin(), gids.end(), peer.gid) != gids.end();
}

void set_socket_file_permissions(const Address& address, const SocketFilePermissions& permissions) {
  if (permissions.empty()) return;
  if (!address.is_unix() || address.is_abstract()) {
    throw std::invalid_argument("socket file mode/owner: " + address.to_string() +
                                " has no file (a Unix path is needed)");
  }
  const auto path = address.path();
  // chown first: chown(2) by a non-root owner clears the set-id bits, so the mode comes last.
  if (permissions.owner || permissions.group) {
    const auto uid = permissions.owner.value_or(static_cast<uid_t>(-1));
    const auto gid = permissions.group.value_or(static_cast<gid_t>(-1));
    if (::chown(path.c_str(), uid, gid) != 0) throw_errno("chown", path);
  }
  if (permissions.mode && ::chmod(path.c_str(), *permissions.mode) != 0) {
    throw_errno("chmod", path);
  }
}

}  // namespace sockserv
