// SPDX-License-Identifier: MIT
// examples/aio/resp_server (issue 13 item 10) against Debian's redis-cli as a real client:
// PING, SET/GET/DEL/INCR, a pipelined load through `redis-cli --pipe`, and malformed input over
// a raw socket (an "-ERR Protocol error" reply, the connection closed, the server still serving).
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;

class RespExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_program("redis-cli")) GTEST_SKIP() << "redis-cli not installed";
    const auto line = server_.read_line(20s);
    ASSERT_TRUE(line && line->starts_with("listening on ")) << "stderr: " << server_.err();
    address_ = Address::parse(line->substr(13));
    port_ = std::to_string(address_.port());
  }

  std::string cli(std::vector<std::string> args, std::string_view input = {}) {
    std::vector<std::string> argv{"redis-cli", "-h", "127.0.0.1", "-p", port_};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto result = test::run_command(argv, input, 30s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.out;
  }

  test::Process server_{{AIO_RESP_SERVER, "127.0.0.1", "0"}};
  Address address_;
  std::string port_;
};

TEST_F(RespExampleTest, AnswersRedisCliCommands) {
  EXPECT_EQ(cli({"PING"}), "PONG\n");
  EXPECT_EQ(cli({"SET", "greeting", "hello world"}), "OK\n");
  EXPECT_EQ(cli({"GET", "greeting"}), "hello world\n");
  EXPECT_EQ(cli({"INCR", "counter"}), "1\n");
  EXPECT_EQ(cli({"INCR", "counter"}), "2\n");
  EXPECT_EQ(cli({"INCR", "greeting"}), "ERR value is not an integer or out of range\n\n");
  EXPECT_EQ(cli({"DEL", "greeting", "counter", "missing"}), "2\n");
  EXPECT_EQ(cli({"GET", "greeting"}), "\n");                       // nil
  EXPECT_EQ(cli({"NOSUCH"}), "ERR unknown command 'NOSUCH'\n\n");  // redis-cli adds a line
}

TEST_F(RespExampleTest, AnswersAPipelineFromRedisCliPipe) {
  // 1000 requests in RESP, written by redis-cli as fast as it can, replies read as they come.
  std::string input;
  for (int i = 0; i < 500; ++i) {
    const std::string key = "k" + std::to_string(i % 10);
    input += "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$1\r\nv\r\n";
    input += "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n";
  }
  const std::string out = cli({"--pipe"}, input);
  EXPECT_TRUE(test::contains(out, "errors: 0, replies: 1000")) << out;
  EXPECT_EQ(cli({"GET", "n"}), "500\n");
}

TEST_F(RespExampleTest, AnswersPipelinedInlineAndArrayRequestsInOrder) {
  Socket sock = test::connect_to(address_);
  std::string request;
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    request += i % 2 ? "PING\r\n" : "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n";
    expected += i % 2 ? "+PONG\r\n" : "$2\r\nhi\r\n";
  }
  sock.sendall(request);
  EXPECT_EQ(sock.recv_exact(expected.size()), expected);
}

TEST_F(RespExampleTest, MalformedRequestsGetAnErrorAndTheConnectionIsClosed) {
  for (const std::string bad : {"*1\r\n$x\r\n", "*99999\r\n", "*1\r\n$3\r\nGETxx",
                                "*1\r\n$999999999\r\n", "*1\r\n:5\r\n"}) {
    Socket sock = test::connect_to(address_);
    sock.sendall(bad);
    const std::string reply = test::recv_line(sock);
    EXPECT_TRUE(reply.starts_with("-ERR Protocol error: ")) << bad << " -> " << reply;
    EXPECT_TRUE(test::ended_by_server(sock)) << bad;
  }
  // An inline line that never ends: cut off at 64 KiB, not buffered without limit.
  Socket sock = test::connect_to(address_);
  try {
    sock.sendall(std::string(100 * 1024, 'x'));
  } catch (const ConnectionError&) {
    // The server closed before it took everything: also the expected end.
  }
  EXPECT_TRUE(test::recv_line(sock).starts_with("-ERR Protocol error: inline command too long"));
  EXPECT_EQ(cli({"PING"}), "PONG\n");  // still serving
  server_.kill(SIGTERM);
  server_.read_to_eof(10s);
  EXPECT_TRUE(test::contains(server_.err(), "invalid bulk length; closing")) << server_.err();
}

}  // namespace
}  // namespace sockserv
