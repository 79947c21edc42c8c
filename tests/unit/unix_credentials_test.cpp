// SPDX-License-Identifier: MIT
// Peer credentials, the allow list, the socket file's mode and owner, and the privilege drop
// (issue 11), with real processes: a forked child as nobody (65534) is the other-uid peer, and
// the drop is read from /proc/PID/status.
#include <sockserv/unix_credentials.hpp>
// Test that header file is self-contained.

#include <sockserv/error.hpp>
#include <sockserv/privileges.hpp>

#include "support/as_user.hpp"
#include "support/test_support.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::contains;
using test::nobody_uid;
using test::nogroup_gid;

#define REQUIRE_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (setuid to nobody)"

TEST(PeerCredentials, a_socketpair_reports_this_process) {
  auto [a, b] = socketpair();
  const auto peer = peer_credentials(b);
  EXPECT_EQ(peer.pid, ::getpid());
  EXPECT_EQ(peer.uid, ::geteuid());
  EXPECT_EQ(peer.gid, ::getegid());
  EXPECT_EQ(peer.to_string(), "pid=" + std::to_string(::getpid()) +
                                  " uid=" + std::to_string(::geteuid()) +
                                  " gid=" + std::to_string(::getegid()));
}

TEST(PeerCredentials, a_tcp_socket_has_none) {
  auto [client, server] = test::tcp_pair();
  EXPECT_TRUE(test::throws_code<SocketError>([&] { peer_credentials(server); },
                                             std::errc::address_family_not_supported));
}

TEST(PeerCredentials, a_peer_process_of_another_uid_is_seen_as_it_connected) {
  REQUIRE_ROOT();
  test::TempDir dir;
  ::chmod(dir.path().c_str(), 0755);  // nobody must reach the socket
  const auto path = dir.path("creds.sock");
  auto server = create_server(Address::unix_path(path));
  ::chmod(path.c_str(), 0666);
  server.settimeout(10s);
  // The child connects as nobody, sends its pid and exits: the connection waits in the backlog,
  // and SO_PEERCRED keeps what the peer was when it connected.
  auto out = test::run_as_user([&] {
    auto sock = test::connect_to(Address::unix_path(path));
    sock.sendall(std::to_string(::getpid()) + "\n");
    return std::string("sent");
  });
  ASSERT_TRUE(out);
  ASSERT_EQ(*out, "sent");
  auto [conn, peer] = server.accept();
  conn.settimeout(10s);
  const auto child_pid = test::recv_line(conn);
  const auto creds = peer_credentials(conn);
  EXPECT_EQ(std::to_string(creds.pid) + "\n", child_pid);
  EXPECT_EQ(creds.uid, nobody_uid);
  EXPECT_EQ(creds.gid, nogroup_gid);
  EXPECT_NE(creds.pid, ::getpid());
}

TEST(CredentialAllowList, uid_or_gid_admits_and_empty_admits_everyone) {
  const PeerCredentials nobody{1, nobody_uid, nogroup_gid};
  const PeerCredentials root{1, 0, 0};
  EXPECT_TRUE(CredentialAllowList{}.allows(nobody));
  const CredentialAllowList by_uid{{0}, {}};
  EXPECT_TRUE(by_uid.allows(root));
  EXPECT_FALSE(by_uid.allows(nobody));
  const CredentialAllowList by_gid{{}, {nogroup_gid}};
  EXPECT_TRUE(by_gid.allows(nobody));
  EXPECT_FALSE(by_gid.allows(root));
}

TEST(SocketFilePermissions, mode_and_owner_are_set_on_the_file) {
  REQUIRE_ROOT();
  test::TempDir dir;
  const auto address = Address::unix_path(dir.path("perm.sock"));
  Socket s(AF_UNIX, SOCK_STREAM);
  s.bind(address);
  set_socket_file_permissions(address, {0640, nobody_uid, nogroup_gid});
  struct stat st {};
  ASSERT_EQ(::stat(address.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, nobody_uid);
  EXPECT_EQ(st.st_gid, nogroup_gid);
}

TEST(SocketFilePermissions, an_abstract_name_has_no_file) {
  const auto address = Address::abstract(test::unique_abstract_name());
  EXPECT_THROW(set_socket_file_permissions(address, {0600, {}, {}}), std::invalid_argument);
  EXPECT_NO_THROW(set_socket_file_permissions(address, {}));
}

TEST(LookupUser, names_ids_and_the_primary_group) {
  const auto nobody = lookup_user("nobody");
  EXPECT_EQ(nobody.uid, nobody_uid);
  EXPECT_EQ(nobody.gid, nogroup_gid);
  EXPECT_FALSE(nobody.explicit_group);
  const auto both = lookup_user("nobody:nogroup");
  EXPECT_EQ(both.gid, nogroup_gid);
  EXPECT_TRUE(both.explicit_group);
  const auto numeric = lookup_user("65534:0");
  EXPECT_EQ(numeric.uid, nobody_uid);
  EXPECT_EQ(numeric.gid, 0u);
}

TEST(LookupUser, an_unknown_user_or_group_is_named_in_the_error) {
  try {
    lookup_user("no-such-user-sockserv");
    ADD_FAILURE() << "nothing thrown";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), "unknown user 'no-such-user-sockserv'")) << e.what();
  }
  try {
    lookup_user("nobody:no-such-group-sockserv");
    ADD_FAILURE() << "nothing thrown";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), "unknown group 'no-such-group-sockserv'")) << e.what();
  }
}

std::string status_lines(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0 || line.rfind("Groups:", 0) == 0) {
      out += line + "\n";
    }
  }
  return out;
}

TEST(DropPrivileges, a_child_becomes_nobody_for_good) {
  REQUIRE_ROOT();
  int ready[2], go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    ::close(go[1]);  // so that the parent's close is our EOF
    char verdict = 'F';
    try {
      drop_privileges(lookup_user("nobody:nogroup"));
      verdict = ::setuid(0) != 0 ? 'K' : 'R';  // K: root is out of reach
    } catch (...) {
    }
    [[maybe_unused]] auto n = ::write(ready[1], &verdict, 1);
    char c;
    n = ::read(go[0], &c, 1);  // stay alive while the parent reads /proc
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(go[0]);
  ASSERT_TRUE(test::wait_readable(ready[0], 10s));
  char verdict = 0;
  ASSERT_EQ(::read(ready[0], &verdict, 1), 1);
  const auto status = status_lines(child);
  ::close(go[1]);
  int st = 0;
  ::waitpid(child, &st, 0);
  ::close(ready[0]);
  EXPECT_EQ(verdict, 'K');
  EXPECT_TRUE(contains(status, "Uid:\t65534\t65534\t65534\t65534\n")) << status;
  EXPECT_TRUE(contains(status, "Gid:\t65534\t65534\t65534\t65534\n")) << status;
  EXPECT_TRUE(test::groups_line_empty(status)) << status;
}

TEST(DropPrivileges, without_root_it_fails_with_a_clear_error) {
  REQUIRE_ROOT();
  auto out = test::run_as_user([] {
    try {
      drop_privileges(UserGroup{0, 0, true});
      return std::string("dropped?!");
    } catch (const std::system_error& e) {
      return std::string(e.what());
    }
  });
  ASSERT_TRUE(out);
  EXPECT_TRUE(contains(*out, "drop_privileges: setgroups")) << *out;
}

}  // namespace
}  // namespace sockserv
