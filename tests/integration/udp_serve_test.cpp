// SPDX-License-Identifier: MIT
// `sockserv serve --udp` in every mode (sync, threading, pool, forking, async) as a real process:
// the default maximum datagram is the same everywhere (65,507 bytes, the largest UDP payload
// over IPv4: threading mode used to drop anything over 8,192), --max-packet-size changes it, and
// a datagram over the limit is dropped with a log line while the server goes on serving.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;

// `sockserv serve --udp 127.0.0.1:0 --handler echo --mode MODE ARGS...`, waited for until it
// prints "listening on ADDRESS"; the destructor sends SIGTERM and reaps it.
class UdpServe {
 public:
  UdpServe(const std::string& mode, std::vector<std::string> args)
      : process_(command(mode, std::move(args))) {
    const auto line = process_.read_line(20s);
    if (line && line->starts_with("listening on ")) {
      address_ = Address::parse(line->substr(13));
    } else {
      ADD_FAILURE() << "no 'listening on' line; stderr: " << process_.err();
    }
  }
  ~UdpServe() {
    process_.kill(SIGTERM);
    process_.read_to_eof(10s);
    EXPECT_EQ(process_.wait(10s), 0) << process_.err();
  }
  UdpServe(const UdpServe&) = delete;
  UdpServe& operator=(const UdpServe&) = delete;

  bool started() const { return address_.has_value(); }
  const Address& address() const { return *address_; }
  // Reads the server's output until its log (stderr) holds `text`; false after 10 s.
  bool wait_for_log(std::string_view text) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!test::contains(process_.err(), text)) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      (void)process_.read_line(50ms);
    }
    return true;
  }
  const std::string& err() const { return process_.err(); }

 private:
  static std::vector<std::string> command(const std::string& mode, std::vector<std::string> args) {
    std::vector<std::string> argv{SOCKSERV_EXE,  "serve",     "--mode", mode,      "--udp",
                                  "127.0.0.1:0", "--handler", "echo",   "--grace", "0.5"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  test::Process process_;
  std::optional<Address> address_;
};

class UdpServeModes : public testing::TestWithParam<std::string> {};

TEST_P(UdpServeModes, TheLargestIPv4DatagramEchoesByDefault) {
  UdpServe serve(GetParam(), {});
  ASSERT_TRUE(serve.started());
  Socket client(AF_INET, SOCK_DGRAM);
  client.settimeout(10s);
  std::string big(65507, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  client.sendto(big, serve.address());
  EXPECT_EQ(client.recvfrom(70000).first, big);
  client.sendto("small", serve.address());
  EXPECT_EQ(client.recvfrom(100).first, "small");
}

TEST_P(UdpServeModes, MaxPacketSizeDropsALargerDatagramWithALogLineAndServesTheNext) {
  UdpServe serve(GetParam(), {"--max-packet-size", "1000"});
  ASSERT_TRUE(serve.started());
  Socket client(AF_INET, SOCK_DGRAM);
  client.settimeout(10s);
  client.sendto(std::string(1001, 'x'), serve.address());
  EXPECT_TRUE(serve.wait_for_log("max_packet_size")) << serve.err();
  EXPECT_TRUE(test::contains(serve.err(), "dropped")) << serve.err();
  client.sendto(std::string(1000, 'y'), serve.address());  // exactly the limit: served
  EXPECT_EQ(client.recvfrom(2000).first, std::string(1000, 'y'));
}

INSTANTIATE_TEST_SUITE_P(Modes, UdpServeModes,
                         testing::Values("sync", "threading", "pool", "forking", "async"),
                         [](const testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

TEST(UdpServeTest, MaxPacketSizeOutOfRangeIsRefused) {
  const auto result = test::run_command(
      {SOCKSERV_EXE, "serve", "--udp", "127.0.0.1:0", "--max-packet-size", "0"}, {}, 20s);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(test::contains(result.err + result.out, "max-packet-size"))
      << result.err << result.out;
}

}  // namespace
}  // namespace sockserv
