// SPDX-License-Identifier: MIT
// send_fds / recv_fds (issue 11): between processes (a forked child, and Python's own
// socket.send_fds / recv_fds as the peer), close-on-exec, truncation without a leak.
#include <sockserv/fd_passing.hpp>
// Test that header file is self-contained.

#include <sockserv/error.hpp>

#include "support/test_support.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <string>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::contains;

std::string read_all(int fd) {
  std::string out;
  char chunk[256];
  for (int i = 0; i < 1000; ++i) {
    const auto n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    out.append(chunk, static_cast<std::size_t>(n));
  }
  return out;
}

TEST(FdPassing, recv_fds_gets_a_pipe_a_child_process_sent_with_its_data) {
  auto [ours, theirs] = socketpair();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ours.close();
    int p[2];
    if (::pipe(p) != 0) ::_exit(2);
    const std::array<std::string_view, 2> buffers{"fd", "s"};
    const std::array<int, 1> fds{p[0]};
    send_fds(theirs, buffers, fds);
    ::close(p[0]);  // the receiver holds its own copy now
    [[maybe_unused]] auto n = ::write(p[1], "from the child", 14);
    ::_exit(0);
  }
  theirs.close();
  ours.settimeout(10s);
  auto [data, fds, flags, address] = recv_fds(ours, 16, 4);
  EXPECT_EQ(data, "fds");
  EXPECT_EQ(flags, 0);
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_TRUE(::fcntl(fds[0].get(), F_GETFD) & FD_CLOEXEC) << "received fds must be close-on-exec";
  EXPECT_EQ(read_all(fds[0].get()), "from the child");
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(status, 0);
}

TEST(FdPassing, descriptors_arrive_in_the_order_sent_on_a_datagram_socket) {
  auto [a, b] = socketpair(AF_UNIX, SOCK_DGRAM);
  int p1[2], p2[2];
  ASSERT_EQ(::pipe(p1), 0);
  ASSERT_EQ(::pipe(p2), 0);
  EXPECT_EQ(send_fds(a, {"two"}, {p1[0], p2[0]}), 3u);
  ::close(p1[0]);
  ::close(p2[0]);
  b.settimeout(10s);
  auto result = recv_fds(b, 64, 2);
  ASSERT_EQ(result.fds.size(), 2u);
  EXPECT_EQ(result.data, "two");
  ASSERT_EQ(::write(p1[1], "1", 1), 1);
  ASSERT_EQ(::write(p2[1], "2", 1), 1);
  ::close(p1[1]);
  ::close(p2[1]);
  EXPECT_EQ(read_all(result.fds[0].get()), "1");
  EXPECT_EQ(read_all(result.fds[1].get()), "2");
}

TEST(FdPassing, more_descriptors_than_maxfds_is_an_error_and_leaks_none) {
  auto [a, b] = socketpair();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const auto before = test::count_open_fds();
  send_fds(a, {"x"}, {p[0], p[1], p[0]});
  b.settimeout(10s);
  EXPECT_TRUE(test::throws_code<SocketError>([&] { recv_fds(b, 16, 1); }, errc::control_truncated));
  EXPECT_EQ(test::count_open_fds(), before) << "the descriptor that fit must be closed";
  ::close(p[0]);
  ::close(p[1]);
}

TEST(FdPassing, plain_data_without_descriptors_and_eof) {
  auto [a, b] = socketpair();
  a.sendall("plain");
  a.shutdown(SHUT_WR);
  b.settimeout(10s);
  auto first = recv_fds(b, 16, 4);
  EXPECT_EQ(first.data, "plain");
  EXPECT_TRUE(first.fds.empty());
  EXPECT_EQ(recv_fds(b, 16, 4).data, "");
}

TEST(FdPassing, recv_fds_honours_the_socket_timeout) {
  auto [a, b] = socketpair();
  b.settimeout(20ms);
  EXPECT_TRUE(test::throws_code<TimeoutError>([&] { recv_fds(b, 16, 1); }, std::errc::timed_out));
  b.setblocking(false);
  EXPECT_TRUE(test::throws_code<SocketError>([&] { recv_fds(b, 16, 1); },
                                             std::errc::resource_unavailable_try_again));
}

// Python's own functions as the peer, both ways: the signatures and the wire format agree.
TEST(FdPassing, interoperates_with_python_send_fds_and_recv_fds) {
  test::TempDir dir;
  const auto path = dir.path("fds.sock");
  auto server = create_server(Address::unix_path(path));
  const std::string script =
      "import os, socket, sys\n"
      "s = socket.socket(socket.AF_UNIX)\n"
      "s.connect(sys.argv[1])\n"
      "r, w = os.pipe()\n"
      "os.write(w, b'written by python')\n"
      "os.close(w)\n"
      "socket.send_fds(s, [b'py'], [r])\n"
      "data, fds, flags, addr = socket.recv_fds(s, 16, 2)\n"
      "os.write(fds[0], b'back:' + data)\n"
      "print(len(fds), flags)\n";
  test::Process python({test::python3(), "-c", script, path});
  server.settimeout(10s);
  auto [conn, peer] = server.accept();
  conn.settimeout(10s);
  auto got = recv_fds(conn, 16, 2);
  EXPECT_EQ(got.data, "py");
  ASSERT_EQ(got.fds.size(), 1u);
  EXPECT_EQ(read_all(got.fds[0].get()), "written by python");
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  send_fds(conn, {"cpp"}, {p[1]});
  ::close(p[1]);
  EXPECT_EQ(python.read_line(), "1 0");
  EXPECT_EQ(python.wait(), 0) << python.err();
  EXPECT_EQ(read_all(p[0]), "back:cpp");
  ::close(p[0]);
}

TEST(FdPassing, a_tcp_socket_refuses_scm_rights) {
  auto [client, server] = test::tcp_pair();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_THROW(send_fds(client, {"x"}, {p[0]}), std::invalid_argument);
  ::close(p[0]);
  ::close(p[1]);
}

}  // namespace
}  // namespace sockserv
