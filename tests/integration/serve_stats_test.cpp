// SPDX-License-Identifier: MIT
// `sockserv serve --stats` counts every byte the echo handler moves, in the sync, threading and
// async modes, including those of a connection that ends with a reset (the handler leaves by an
// exception). The threading and sync echo handlers talk to the socket directly, not through
// rfile/wfile, so they keep their own counts; this is what keeps them honest.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::last_value;

std::string recv_all(Socket& sock, std::size_t n) {
  std::string all;
  while (all.size() < n) {
    const auto chunk = sock.recv(65536);
    if (chunk.empty()) break;
    all += chunk;
  }
  return all;
}

class ServeStatsTest : public testing::TestWithParam<std::string> {};

TEST_P(ServeStatsTest, EchoBytesAreCountedEvenWhenTheConnectionEndsWithAReset) {
  std::vector<std::string> argv{SOCKSERV_EXE, "serve",     "--tcp", "127.0.0.1:0", "--mode",
                                GetParam(),   "--handler", "echo",  "--stats",     "0.2"};
  if (GetParam() == "async") argv.insert(argv.end(), {"--threads", "1"});
  test::Process proc(argv);
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();
  const Address address = Address::parse(banner->substr(13));

  std::string data;
  for (int i = 0; i < 20000; ++i) data += static_cast<char>(i % 251);
  {
    auto sock = test::connect_to(address);
    sock.sendall(data);
    sock.shutdown(SHUT_WR);
    EXPECT_EQ(recv_all(sock, data.size() + 1), data);
  }
  {
    // 1000 bytes echoed, then a reset: the server's next recv fails and the handler ends by an
    // exception, after both counts were taken.
    auto sock = test::connect_to(address);
    sock.sendall(data.substr(0, 1000));
    EXPECT_EQ(recv_all(sock, 1000), data.substr(0, 1000));
    sock.set_linger(0s);  // close() sends RST
  }
  // SIGTERM drains: the server exits once both handlers have ended, and logs its final stats.
  proc.kill(SIGTERM);
  EXPECT_EQ(proc.wait(15s), 0) << proc.err();
  proc.read_to_eof(5s);
  EXPECT_EQ(last_value(proc.err(), "bytes_in"), 21000) << proc.err();
  EXPECT_EQ(last_value(proc.err(), "bytes_out"), 21000) << proc.err();
  EXPECT_EQ(last_value(proc.err(), "accepted"), 2) << proc.err();
}

std::string mode_name(const testing::TestParamInfo<std::string>& mode) { return mode.param; }

INSTANTIATE_TEST_SUITE_P(Modes, ServeStatsTest,
                         testing::Values("sync", "threading", "pool", "forking", "async"),
                         mode_name);

}  // namespace
}  // namespace sockserv
