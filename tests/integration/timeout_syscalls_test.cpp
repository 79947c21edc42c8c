// SPDX-License-Identifier: MIT
// Issue 10: a timeout must cost nothing on the hot path. `sockserv serve` runs under strace at
// its defaults (a 60 s connection timeout) in the blocking modes, a client exchanges messages
// one at a time, and the syscalls made on the connection's descriptor are counted: one recv
// and one send per message, no poll() at all, and the kernel timer set at most once per
// direction (docs/adr/0004-kernel-timers.md). Counting, not timing: it holds on any machine.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;

constexpr int messages = 200;

// The PID of the only child of `parent` (strace's tracee), or -1.
pid_t only_child(pid_t parent) {
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                   "/children");
  pid_t child = -1;
  in >> child;
  return child;
}

// Per syscall name, how often it was made on descriptor `fd` in strace's output, up to its
// close (after which the number may name another file). One line per call, "PID name(args) =
// result"; poll's descriptor is written "fd=N". A call another thread's call interrupted is
// split into "name(args <unfinished ...>" and "<... name resumed>": counted once.
// (Each process counts until its own close: the forking server's parent closes its copy first.)
std::map<std::string, int> calls_on(const std::string& trace, int fd) {
  std::map<std::string, int> counts;
  std::set<std::string> closed;  // the PIDs that have closed it
  const std::regex call(R"(^(\d+)\s+(\w+)\((\d+)[,)])");
  const std::regex poll(R"(^(\d+)\s+(\w*poll)\(\[\{fd=(\d+),)");
  // From the accept on: before it the number may have named a file (the sanitizers' runtime
  // opens and closes some at start-up).
  std::istringstream lines(trace.substr(trace.find("accept4(")));
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if ((std::regex_search(line, m, call) || std::regex_search(line, m, poll)) &&
        std::stoi(m[3]) == fd && !closed.contains(m[1])) {
      if (m[2] == "close") {
        closed.insert(m[1]);
      } else {
        ++counts[m[2]];
      }
    }
  }
  return counts;
}

// The descriptor accept4() returned in the trace (the only connection), or -1.
int accepted_fd(const std::string& trace) {
  const std::regex accepted(R"(accept4\(.*\) = (\d+))");
  std::smatch m;
  return std::regex_search(trace, m, accepted) ? std::stoi(m[1]) : -1;
}

struct Case {
  std::string mode;
  std::string handler;
  std::string message;  // what the client sends each time (the upper handler reads lines)
  // The server's timeouts: empty for the command's defaults; "0" for --timeout 0, which leaves
  // only the idle timeout (a read that finds nothing buffered waits under its kernel timer).
  std::string timeout = {};
};

class TimeoutSyscallsTest : public testing::TestWithParam<Case> {};

TEST_P(TimeoutSyscallsTest, ATimedMessageIsOneRecvAndOneSendWithoutPoll) {
  if (!test::have_program("strace")) GTEST_SKIP() << "strace is not installed";
  const auto& param = GetParam();
  const std::string trace_path = ::testing::TempDir() + "/sockserv-timeout-syscalls-" + param.mode +
                                 "-" + param.handler + "-" + param.timeout + ".trace";
  // Only the calls that could carry a timeout's cost: the data calls (recv/send are recvfrom/sendto
  // on x86-64 and arm64), poll, setsockopt and fcntl.
  const std::string calls = "trace=recvfrom,sendto,poll,ppoll,setsockopt,accept4,fcntl,close";
  std::vector<std::string> argv{"strace", "-f", "-qq", "-o", trace_path, "-e", calls};
  argv.insert(argv.end(), {SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--mode", param.mode,
                           "--handler", param.handler});
  if (!param.timeout.empty()) argv.insert(argv.end(), {"--timeout", param.timeout});
  test::Process proc(argv);
  const auto banner = proc.read_line(30s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();
  {
    auto sock = test::connect_to(Address::parse(banner->substr(13)));
    sock.settimeout(20s);
    for (int i = 0; i < messages; ++i) {
      sock.sendall(param.message);
      ASSERT_EQ(sock.recv_exact(param.message.size()).size(), param.message.size());
    }
  }
  const pid_t server = only_child(proc.pid());
  ASSERT_GT(server, 0);
  ::kill(server, SIGTERM);  // the server we started (strace's child); strace then exits
  ASSERT_TRUE(proc.wait(30s).has_value());

  std::ifstream in(trace_path);
  const std::string trace((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(trace_path.c_str());
  const int fd = accepted_fd(trace);
  ASSERT_GE(fd, 0) << trace.substr(0, 2000);
  auto counts = calls_on(trace, fd);
  // One recv per message, plus the one that sees the client's EOF and the polite close's
  // drain (a MSG_DONTWAIT recv that finds the EOF again); forking mode: and the parent's
  // MSG_PEEK that checks the connection is not silent before it forks (--first-bytes-timeout).
  const int per_connection = param.mode == "forking" ? 3 : 2;
  EXPECT_GE(counts["recvfrom"], messages);
  EXPECT_LE(counts["recvfrom"], messages + per_connection);
  EXPECT_EQ(counts["sendto"], messages);
  EXPECT_EQ(counts["poll"] + counts["ppoll"], 0) << "a timed call waited in poll()";
  EXPECT_EQ(counts["fcntl"], 0) << "the descriptor's blocking mode changed";
  // SO_RCVTIMEO and SO_SNDTIMEO, once each for the connection's life.
  EXPECT_LE(counts["setsockopt"], 2 + 1 /* TCP_NODELAY or the like */);
}

INSTANTIATE_TEST_SUITE_P(Defaults, TimeoutSyscallsTest,
                         testing::Values(Case{"threading", "echo", "0123456789abcdef"},
                                         Case{"threading", "upper", "one line\n"},
                                         Case{"pool", "echo", "ping"},
                                         Case{"sync", "upper", "one line\n"},
                                         Case{"forking", "echo", "ping"}),
                         [](const testing::TestParamInfo<Case>& test_case) {
                           return test_case.param.mode + "_" + test_case.param.handler;
                         });

// --timeout 0: no request timeout, the idle timeout alone (600 s). Its wait was once a poll()
// (recv EAGAIN, poll, recv: three calls per message at depth 1).
INSTANTIATE_TEST_SUITE_P(IdleTimeoutOnly, TimeoutSyscallsTest,
                         testing::Values(Case{"threading", "echo", "ping", "0"},
                                         Case{"threading", "upper", "one line\n", "0"},
                                         Case{"pool", "echo", "ping", "0"},
                                         Case{"sync", "upper", "one line\n", "0"},
                                         Case{"forking", "echo", "ping", "0"}),
                         [](const testing::TestParamInfo<Case>& test_case) {
                           return test_case.param.mode + "_" + test_case.param.handler;
                         });

}  // namespace
}  // namespace sockserv
