// SPDX-License-Identifier: MIT
// Issue 13, item 7: a failure at start-up is one line, not an abort. Every server program in
// examples/ and `sockserv serve` (in a blocking and the async mode, over TCP and UDP) is started
// on a loopback address another socket holds: each must print exactly one line on stderr naming
// the problem and exit with a non-zero status (not std::terminate's SIGABRT, not a hang).
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;

struct Program {
  std::string name;               // the test's name
  std::vector<std::string> argv;  // "HOST" and "PORT" are replaced; "HOST:PORT" too
  int type = SOCK_STREAM;         // what the program binds
};

std::vector<Program> programs() {
  return {
      {"aio_upper_server", {AIO_UPPER_SERVER, "HOST", "PORT"}},
      {"aio_chat_server", {AIO_CHAT_SERVER, "HOST", "PORT"}},
      {"python_docs_tcp_server", {PYTHON_DOCS_TCP_SERVER, "HOST", "PORT"}},
      {"python_docs_tcp_server_streams", {PYTHON_DOCS_TCP_SERVER_STREAMS, "HOST", "PORT"}},
      {"python_docs_threaded_tcp_server", {PYTHON_DOCS_THREADED_TCP_SERVER, "HOST", "PORT"}},
      {"python_docs_forked_tcp_server", {PYTHON_DOCS_FORKED_TCP_SERVER, "HOST", "PORT"}},
      {"python_docs_udp_server", {PYTHON_DOCS_UDP_SERVER, "HOST", "PORT"}, SOCK_DGRAM},
      {"howto_server_socket", {HOWTO_SERVER_SOCKET, "--host", "HOST", "--port", "PORT"}},
      {"howto_nonblocking_server", {HOWTO_NONBLOCKING_SERVER, "--host", "HOST", "--port", "PORT"}},
      {"sockserv_serve_sync", {SOCKSERV_EXE, "serve", "--tcp", "HOST:PORT"}},
      {"sockserv_serve_async", {SOCKSERV_EXE, "serve", "--mode", "async", "--tcp", "HOST:PORT"}},
      {"sockserv_serve_udp", {SOCKSERV_EXE, "serve", "--udp", "HOST:PORT"}, SOCK_DGRAM},
      {"sockserv_serve_async_udp",
       {SOCKSERV_EXE, "serve", "--mode", "async", "--udp", "HOST:PORT"},
       SOCK_DGRAM},
  };
}

class StartupFailureTest : public testing::TestWithParam<Program> {};

std::vector<std::string> fill_in(std::vector<std::string> argv, const Address& taken) {
  const std::string host = taken.host();
  const std::string port = std::to_string(taken.port());
  std::string host_port = host;
  host_port += ':';
  host_port += port;
  for (auto& arg : argv) {
    if (arg == "HOST") arg = host;
    if (arg == "PORT") arg = port;
    if (arg == "HOST:PORT") arg = host_port;
  }
  return argv;
}

TEST_P(StartupFailureTest, AddressInUseIsOneLineOnStderrAndANonZeroExit) {
  // The holder binds without SO_REUSEADDR and (streams) listens: no program may share it.
  Socket holder(AF_INET, GetParam().type);
  holder.bind(Address{"127.0.0.1", 0});
  if (GetParam().type == SOCK_STREAM) holder.listen();
  const auto argv = fill_in(GetParam().argv, holder.getsockname());

  const auto result = test::run_command(argv, {}, 10s);
  ASSERT_FALSE(result.timed_out) << "it served on an address in use";
  EXPECT_GT(result.exit_code, 0) << "exit " << result.exit_code << " (negative: a signal)\n"
                                 << result.err;
  const auto lines = std::count(result.err.begin(), result.err.end(), '\n');
  EXPECT_EQ(lines, 1) << "stderr:\n" << result.err;
  EXPECT_TRUE(result.err.ends_with("\n")) << result.err;
  EXPECT_TRUE(test::contains(result.err, "Address already in use")) << result.err;
}

INSTANTIATE_TEST_SUITE_P(Programs, StartupFailureTest, testing::ValuesIn(programs()),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace sockserv
