// SPDX-License-Identifier: MIT
/// @file
/// Privilege drop: bind as root (port 443, a socket in a root-owned directory), then serve as an
/// unprivileged user.
///
/// ```
///   const auto who = sockserv::lookup_user("www-data");   // before binding: fail fast
///   sockserv::ThreadingTCPServer server({"0.0.0.0", 443}, handler);
///   sockserv::drop_privileges(who);                        // before serve_forever()
///   server.serve_forever();
/// ```
///
/// Call drop_privileges() before any request is served, and before forking children: they inherit
/// the dropped ids. glibc applies setuid/setgid/setgroups to every thread of the process.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace sockserv {

/// A user and a group to run as, made by lookup_user().
struct UserGroup {
  uid_t uid = 0;  ///< the user id
  gid_t gid = 0;  ///< the group id: the named group, or the user's primary group
  /// True when the spec named the group; false when `gid` is the user's primary group.
  bool explicit_group = false;
  /// "uid=65534 gid=65534"
  std::string to_string() const;
};

/// Parses "USER[:GROUP]": names (looked up in the user and group databases: /etc/passwd, NSS) or
/// decimal ids. Without GROUP, gid is the user's primary group (a numeric uid without a passwd
/// entry then needs a GROUP). Uses the reentrant getpwnam_r/getgrnam_r: safe from any thread.
/// @throws std::invalid_argument with a message naming what is unknown ("unknown user
///         'nosuchuser'"), or for an empty user or group.
/// @python pwd.getpwnam and grp.getgrnam, together
UserGroup lookup_user(std::string_view spec);

/// Becomes `who` for good: clears the supplementary groups (setgroups(0)), then setgid, then
/// setuid (in that order: changing groups needs the privilege setuid gives up), then checks that
/// the ids took and that setuid(0) now fails. A process that already is `who`, with no
/// supplementary groups, is left as it is (so an unprivileged run with --user of itself works).
/// @throws std::system_error naming the step that failed (EPERM: the process is not root); the
///         process's ids may then be partly changed, so the caller must not go on serving
///         (`sockserv serve` exits).
/// @threadsafety Affects every thread of the process (glibc applies it to all of them).
/// @python os.setgroups, os.setgid and os.setuid, in that order
void drop_privileges(const UserGroup& who);

}  // namespace sockserv
