// SPDX-License-Identifier: MIT
// `sockserv serve` on a Unix socket with --unix-mode/--unix-owner/--allow-uid and --handler
// whoami, and --user (issue 11), in every mode. Real peers of two uids: this process (root) and
// a forked child that became nobody (65534). The privilege drop is read in /proc/PID/status.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include "support/as_user.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::contains;

#define REQUIRE_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a peer as nobody, --user)"

std::vector<std::string> serve_argv(const std::string& mode, std::vector<std::string> more) {
  std::vector<std::string> argv{SOCKSERV_EXE, "serve", "--mode", mode};
  if (mode == "async") argv.insert(argv.end(), {"--threads", "2"});
  argv.insert(argv.end(), more.begin(), more.end());
  return argv;
}

// Sends a line, then reads until the server closes: the reply, "" when it closed without one
// (a reset, or EPIPE on the send, counts as closed: the server did not read our line).
std::string exchange(Socket& sock) {
  std::error_code send_error;
  sock.send("who?\n", send_error);
  std::string got;
  char chunk[256];
  for (int i = 0; i < 100; ++i) {
    std::error_code ec;
    const auto n = sock.recv_into(chunk, ec);
    if (ec || n == 0) break;
    got.append(chunk, n);
    if (got.ends_with('\n')) break;
  }
  return got;
}

class UnixServeTest : public testing::TestWithParam<std::string> {};

// The allowed/denied pair: --allow-uid 65534 serves the nobody child (whoami shows its own pid
// and uid) and closes this root peer before the handler runs, with a log line and the counter.
TEST_P(UnixServeTest, AllowUidServesThatUidAndClosesOthersBeforeTheHandler) {
  REQUIRE_ROOT();
  test::TempDir dir;
  ::chmod(dir.path().c_str(), 0755);  // nobody must reach the socket file
  const auto path = dir.path("who.sock");
  test::Process proc(serve_argv(
      GetParam(), {"--unix", path, "--handler", "whoami", "--unix-mode", "660", "--unix-owner",
                   "nobody:nogroup", "--allow-uid", "65534", "--stats", "1000"}));
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, test::nobody_uid);
  EXPECT_EQ(st.st_gid, test::nogroup_gid);

  const auto nobody = test::run_as_user([&] {
    auto sock = test::connect_to(Address::unix_path(path));
    return std::to_string(::getpid()) + "|" + exchange(sock);
  });
  ASSERT_TRUE(nobody);
  const auto bar = nobody->find('|');
  ASSERT_NE(bar, std::string::npos) << *nobody;
  EXPECT_EQ(nobody->substr(bar + 1), "pid=" + nobody->substr(0, bar) + " uid=65534 gid=65534\n");

  auto root = test::connect_to(Address::unix_path(path));
  EXPECT_EQ(exchange(root), "") << "a peer not on the allow list must get no reply";

  proc.kill(SIGTERM);
  ASSERT_EQ(proc.wait(20s), 0) << proc.err();
  proc.read_to_eof();
  EXPECT_TRUE(contains(
      proc.err(), "refused peer pid=" + std::to_string(::getpid()) + " uid=0 gid=0 is not allowed"))
      << proc.err();
  EXPECT_TRUE(contains(proc.err(), "denied_credentials=1")) << proc.err();
}

// Without an allow list every peer the file lets in is served, and whoami shows root too.
TEST_P(UnixServeTest, WhoamiRepliesWithThePeersCredentials) {
  test::TempDir dir;
  const auto path = dir.path("who.sock");
  test::Process proc(serve_argv(GetParam(), {"--unix", path, "--handler", "whoami"}));
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();
  auto sock = test::connect_to(Address::unix_path(path));
  EXPECT_EQ(exchange(sock), "pid=" + std::to_string(::getpid()) +
                                " uid=" + std::to_string(::geteuid()) +
                                " gid=" + std::to_string(::getegid()) + "\n");
}

// Uid, Gid and Groups of every thread of `pid`.
std::vector<std::string> thread_statuses(pid_t pid) {
  std::vector<std::string> out;
  const auto dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/status");
    std::string line, lines;
    while (std::getline(in, line)) {
      if (line.starts_with("Uid:") || line.starts_with("Gid:") || line.starts_with("Groups:")) {
        lines += line + "\n";
      }
    }
    out.push_back(lines);
  }
  ::closedir(d);
  return out;
}

// --user: bound as root, then every thread of the server is nobody:nogroup with no
// supplementary group before the first request (the banner comes after the drop).
TEST_P(UnixServeTest, UserDropsEveryThreadToNobodyBeforeServing) {
  REQUIRE_ROOT();
  test::Process proc(serve_argv(
      GetParam(), {"--tcp", "127.0.0.1:0", "--handler", "upper", "--user", "nobody:nogroup"}));
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();
  auto sock = test::connect_to(Address::parse(banner->substr(13)));
  sock.sendall("hi\n");
  EXPECT_EQ(test::recv_line(sock), "HI\n");
  const auto statuses = thread_statuses(proc.pid());
  ASSERT_FALSE(statuses.empty());
  for (const auto& s : statuses) {
    EXPECT_TRUE(contains(s, "Uid:\t65534\t65534\t65534\t65534\n")) << s;
    EXPECT_TRUE(contains(s, "Gid:\t65534\t65534\t65534\t65534\n")) << s;
    EXPECT_TRUE(test::groups_line_empty(s)) << s;
  }
  EXPECT_TRUE(contains(proc.err(), "running as nobody:nogroup")) << proc.err();
}

INSTANTIATE_TEST_SUITE_P(Modes, UnixServeTest,
                         testing::Values("sync", "threading", "pool", "forking", "async"));

TEST(UnixServeErrors, AnUnknownUserStopsBeforeBindingWithAClearMessage) {
  test::TempDir dir;
  const auto path = dir.path("never.sock");
  const auto r =
      test::run_command({SOCKSERV_EXE, "serve", "--unix", path, "--user", "no-such-user-sockserv"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "--user no-such-user-sockserv: unknown user")) << r.err;
  EXPECT_FALSE(contains(r.out, "listening on")) << r.out;
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0) << "nothing may be bound";
}

// A drop that fails (the command does not run as root) ends the server: never serves.
TEST(UnixServeErrors, AFailedDropNeverServes) {
  REQUIRE_ROOT();
  if (!test::have_program("setpriv")) GTEST_SKIP() << "setpriv (util-linux) not installed";
  const auto r =
      test::run_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--user", "root"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "drop_privileges: setgroups")) << r.err;
  EXPECT_FALSE(contains(r.out, "listening on")) << r.out;
}

TEST(UnixServeErrors, UnixOptionsOnTcpAreRefused) {
  const auto uid =
      test::run_command({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--allow-uid", "0"});
  EXPECT_NE(uid.exit_code, 0);
  EXPECT_TRUE(contains(uid.err, "Unix stream socket")) << uid.err;
  const auto mode =
      test::run_command({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--unix-mode", "600"});
  EXPECT_NE(mode.exit_code, 0);
  EXPECT_TRUE(contains(mode.err, "Unix socket path")) << mode.err;
  const auto bad = test::run_command(
      {SOCKSERV_EXE, "serve", "--unix", "/tmp/sockserv-never.sock", "--unix-mode", "9"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.err, "not an octal mode")) << bad.err;
}

}  // namespace
}  // namespace sockserv
