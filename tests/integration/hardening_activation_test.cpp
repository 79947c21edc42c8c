// SPDX-License-Identifier: MIT
// Issue 5, past one process: two `sockserv serve --reuse-port` processes share one port and both
// receive connections (their --stats counters say so); systemd socket activation (a listening
// socket on fd 3 with LISTEN_PID/LISTEN_FDS, set in the child between fork and exec, as systemd
// does) and inetd style (a listening socket on fd 0, --inetd) make the server take the inherited
// socket instead of binding its own.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv command"
#endif

extern char** environ;

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using test::recv_line;

std::string round_trip(const Address& address, const std::string& line) {
  Socket s = create_connection(address, 5s);
  s.settimeout(5s);
  s.sendall(line);
  return recv_line(s);
}

// The last "accepted=N" in `text` (the final stats line of `sockserv serve --stats`).
long last_accepted(const std::string& text) {
  const auto at = text.rfind("accepted=");
  return at == std::string::npos ? -1 : std::stol(text.substr(at + 9));
}

TEST(ReusePortTest, TwoProcessesShareOnePortAndBothGetConnections) {
  test::Process first({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--reuse-port", "--mode",
                       "threading", "--stats", "0.2"});
  const auto banner = first.read_line(20s);
  ASSERT_TRUE(banner) << first.err();
  const Address address = Address::parse(banner->substr(banner->rfind(' ') + 1));
  test::Process second({SOCKSERV_EXE, "serve", "--tcp", address.to_string(), "--reuse-port",
                        "--mode", "async", "--threads", "1", "--stats", "0.2"});
  const auto banner2 = second.read_line(20s);
  ASSERT_TRUE(banner2) << second.err();
  EXPECT_EQ(*banner2, *banner);  // the same port, bound twice
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(round_trip(address, "conn " + std::to_string(i) + "\n"),
              "CONN " + std::to_string(i) + "\n");
  }
  first.kill(SIGTERM);
  second.kill(SIGTERM);
  EXPECT_EQ(first.wait(15s), 0);
  EXPECT_EQ(second.wait(15s), 0);
  first.read_to_eof(5s);
  second.read_to_eof(5s);
  const long a = last_accepted(first.err());
  const long b = last_accepted(second.err());
  EXPECT_GT(a, 0) << first.err();
  EXPECT_GT(b, 0) << second.err();
  EXPECT_EQ(a + b, 40);
}

// `sockserv serve` started by fork and exec with `listening` on descriptor `target` (3 for
// systemd, 0 for inetd), as a service manager does. Output (stdout and stderr) goes to one pipe.
class InheritingServe {
 public:
  InheritingServe(const Socket& listening, int target, bool systemd_env,
                  std::vector<std::string> args) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
    args.insert(args.begin(), {SOCKSERV_EXE, "serve"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The environment is prepared before fork(); the child only writes its pid into it.
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    std::size_t pid_slot = 0;
    if (systemd_env) {
      env.emplace_back("LISTEN_FDS=1");
      pid_slot = env.size();
      env.emplace_back("LISTEN_PID=" + std::string(20, '\0'));
    }
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid_ == 0) {
      if (systemd_env) write_pid(envp[pid_slot] + 11);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(out[1], STDERR_FILENO);
      if (listening.fileno() == target) {
        ::fcntl(target, F_SETFD, 0);  // keep it across exec
      } else {
        ::dup2(listening.fileno(), target);  // the copy is not close-on-exec
      }
      if (target != STDIN_FILENO) {
        const int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, STDIN_FILENO);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
  }
  ~InheritingServe() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
  }
  InheritingServe(const InheritingServe&) = delete;
  InheritingServe& operator=(const InheritingServe&) = delete;

  // The next output line, without '\n'; nullopt after `limit` or at EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds limit = 20s) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      if (const auto nl = text_.find('\n', used_); nl != std::string::npos) {
        std::string line = text_.substr(used_, nl - used_);
        used_ = nl + 1;
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms || !test::wait_readable(out_, left)) return std::nullopt;
      char buf[512];
      const auto n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      text_.append(buf, static_cast<std::size_t>(n));
    }
  }
  const std::string& output() const noexcept { return text_; }
  // SIGTERM, then the exit status (-1 when it did not end within 10 s).
  int stop() {
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + 10s;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(5ms);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  // The decimal pid into `slot` (async-signal-safe: no allocation after fork()).
  static void write_pid(char* slot) {
    char digits[20];
    int n = 0;
    for (auto pid = static_cast<unsigned long>(::getpid()); pid > 0 || n == 0; pid /= 10) {
      digits[n++] = static_cast<char>('0' + pid % 10);
    }
    while (n > 0) *slot++ = digits[--n];
    *slot = '\0';
  }

  pid_t pid_ = -1;
  int out_ = -1;
  std::string text_;
  std::size_t used_ = 0;
};

std::string listening_line(const Address& address) { return "listening on " + address.to_string(); }

class ActivationTest : public testing::TestWithParam<std::string> {};

TEST_P(ActivationTest, SystemdSocketOnFd3IsServedInsteadOfBinding) {
  Socket listening = create_server(test::loopback4());
  const Address address = listening.getsockname();
  InheritingServe serve(listening, 3, true, {"--mode", GetParam(), "--tcp", "127.0.0.1:0"});
  listening.close();  // only the server holds it now
  EXPECT_EQ(serve.read_line(), listening_line(address)) << serve.output();
  EXPECT_EQ(round_trip(address, "activated\n"), "ACTIVATED\n");
  EXPECT_EQ(serve.stop(), 0) << serve.output();
}

TEST_P(ActivationTest, SystemdUnixSocketIsServedToo) {
  test::TempDir dir;
  const Address path = Address::unix_path(dir.path("activated.sock"));
  Socket listening = create_server(path);
  InheritingServe serve(listening, 3, true, {"--mode", GetParam(), "--tcp", "127.0.0.1:0"});
  listening.close();
  EXPECT_EQ(serve.read_line(), listening_line(path)) << serve.output();
  EXPECT_EQ(round_trip(path, "unix\n"), "UNIX\n");
  EXPECT_EQ(serve.stop(), 0) << serve.output();
}

// LISTEN_PID names another process: the sockets are not ours, the server binds --tcp itself.
TEST_P(ActivationTest, SocketsMeantForAnotherPidAreIgnored) {
  Socket listening = create_server(test::loopback4());
  const Address address = listening.getsockname();
  ::setenv("LISTEN_PID", "1", 1);
  ::setenv("LISTEN_FDS", "1", 1);
  InheritingServe serve(listening, 3, false, {"--mode", GetParam(), "--tcp", "127.0.0.1:0"});
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  const auto banner = serve.read_line();
  ASSERT_TRUE(banner) << serve.output();
  EXPECT_NE(*banner, listening_line(address));
  EXPECT_EQ(banner->rfind("listening on 127.0.0.1:", 0), 0u) << *banner;
  EXPECT_EQ(serve.stop(), 0) << serve.output();
}

TEST_P(ActivationTest, InetdListeningSocketOnFd0IsServed) {
  Socket listening = create_server(test::loopback4());
  const Address address = listening.getsockname();
  InheritingServe serve(listening, 0, false,
                        {"--inetd", "--mode", GetParam(), "--tcp", "127.0.0.1:0"});
  listening.close();
  EXPECT_EQ(serve.read_line(), listening_line(address)) << serve.output();
  EXPECT_EQ(round_trip(address, "inetd\n"), "INETD\n");
  EXPECT_EQ(serve.stop(), 0) << serve.output();
}

INSTANTIATE_TEST_SUITE_P(Modes, ActivationTest, testing::Values("threading", "async"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace sockserv
