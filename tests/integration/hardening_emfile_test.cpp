// SPDX-License-Identifier: MIT
// Issue 5, out of descriptors: when accept() fails with EMFILE the server logs the error with
// its backoff, does not busy-spin (its CPU time stays far below one core while the condition
// lasts), keeps serving, and recovers by itself once descriptors free up.
//
//   - `sockserv serve --mode async|threading` under `prlimit --nofile=32`: more clients connect
//     than the server has descriptors for (each accepted connection holds one).
//   - the sync TCPServer (it holds one connection at a time, so clients alone never exhaust
//     it): a forked child lowers RLIMIT_NOFILE and fills its descriptor table with dup()s,
//     serves, and frees them when the test says so.
#include <sockserv/server.hpp>

#include <sockserv/handlers.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv command"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// utime + stime of process `pid`, in seconds (/proc/PID/stat fields 14 and 15).
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));  // after "pid (comm) "
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // state .. cmajflt
  long utime = 0, stime = 0;
  fields >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The share of one core `pid` used during `window`.
double cpu_share(pid_t pid, std::chrono::milliseconds window) {
  const double before = cpu_seconds(pid);
  const auto start = Clock::now();
  std::this_thread::sleep_for(window);  // the measurement window, not a synchronisation
  const double used = cpu_seconds(pid) - before;
  return used / std::chrono::duration<double>(Clock::now() - start).count();
}

std::string recv_line(Socket& sock) {
  std::string line;
  while (line.empty() || line.back() != '\n') {
    const std::string byte = sock.recv(1);
    if (byte.empty()) break;
    line += byte;
  }
  return line;
}

// Pumps the child's output until its stderr contains `text` or `limit` passes.
bool stderr_shows(test::Process& proc, std::string_view text, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (proc.err().find(text) == std::string::npos) {
    if (Clock::now() >= deadline) return false;
    proc.read_line(50ms);
  }
  return true;
}

class ServeUnderFdLimit : public testing::TestWithParam<std::string> {};

TEST_P(ServeUnderFdLimit, BacksOffWithoutSpinningAndRecovers) {
  test::Process proc({"prlimit", "--nofile=32:32", SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0",
                      "--mode", GetParam(), "--threads", "1", "--handler", "echo"});
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner) << proc.err();
  const Address address = Address::parse(banner->substr(banner->rfind(' ') + 1));
  // 48 clients: the kernel completes every handshake (backlog SOMAXCONN), the server accepts
  // until its table is full.
  std::vector<Socket> clients;
  for (int i = 0; i < 48; ++i) clients.push_back(create_connection(address, 5s));
  ASSERT_TRUE(stderr_shows(proc, "Too many open files", 10s)) << proc.err();
  EXPECT_NE(proc.err().find("retrying in"), std::string::npos) << proc.err();
  EXPECT_LT(cpu_share(proc.pid(), 1s), 0.3) << "the accept loop spins while out of descriptors";
  // A client connected while the server is saturated is served once the others leave.
  Socket late = create_connection(address, 5s);
  late.settimeout(10s);
  late.sendall("ping\n");
  clients.clear();
  EXPECT_EQ(recv_line(late), "ping\n");
  Socket fresh = create_connection(address, 5s);
  fresh.settimeout(10s);
  fresh.sendall("again\n");
  EXPECT_EQ(recv_line(fresh), "again\n");
  late.close();
  fresh.close();
  proc.kill(SIGTERM);
  EXPECT_EQ(proc.wait(15s), 0) << proc.err();
}

INSTANTIATE_TEST_SUITE_P(Modes, ServeUnderFdLimit, testing::Values("async", "threading"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

// ---- The sync server, in a forked child ---------------------------------------------------------

// Once serving (its selector holds a descriptor too), fills the child's descriptor table with
// dup()s and reports its port; frees them when the test writes 'r' to the control pipe, and
// stops serving on 'q'. Checked once per loop iteration (service_actions).
class HoggedServer : public TCPServer {
 public:
  HoggedServer(int control, int report)
      : TCPServer(test::loopback4(), upper()), control_(control), report_(report) {
    ::fcntl(control_, F_SETFL, O_NONBLOCK);
  }
  void service_actions() override {
    if (!filled_) {
      filled_ = true;
      const rlimit limit{64, 64};
      ::setrlimit(RLIMIT_NOFILE, &limit);
      for (int fd; (fd = ::dup(control_)) >= 0;) hog_.push_back(fd);
      const std::string port = std::to_string(server_address.port()) + "\n";
      [[maybe_unused]] const auto n = ::write(report_, port.data(), port.size());
    }
    char command;
    while (::read(control_, &command, 1) == 1) {
      if (command == 'r') {
        for (const int fd : hog_) ::close(fd);
        hog_.clear();
      } else {
        shutdown();  // from the serving thread: asks the loop to end
      }
    }
  }

 private:
  static RequestHandlerFactory upper() {
    return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
      std::string line = self.rfile.readline();
      for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      self.wfile.write(line);
    });
  }
  int control_;
  int report_;
  bool filled_ = false;
  std::vector<int> hog_;
};

// The child's body: stderr to `log_path`, the port to `report`, then serve. Never returns.
[[noreturn]] void run_hogged_child(int report, int control, const std::string& log_path) {
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(log, STDERR_FILENO);
  ::close(log);
  int status = 1;
  try {
    HoggedServer server(control, report);
    server.serve_forever(20ms);
    status = 0;
  } catch (...) {
  }
  ::_exit(status);
}

TEST(SyncServerUnderFdLimit, BacksOffWithoutSpinningAndRecoversWhenDescriptorsFree) {
  test::TempDir dir;
  const std::string log_path = dir.path("server.log");
  int report[2], control[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(control, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) run_hogged_child(report[1], control[0], log_path);
  ::close(report[1]);
  ::close(control[0]);
  struct Reaper {  // a failed assertion must not leave the child behind
    pid_t pid;
    int control, report;
    ~Reaper() {
      ::close(control);
      ::close(report);
      if (pid <= 0) return;
      int status;
      const auto deadline = Clock::now() + 5s;
      while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (Clock::now() >= deadline) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, &status, 0);
          return;
        }
        std::this_thread::sleep_for(5ms);
      }
    }
  } reaper{child, control[1], report[0]};

  ASSERT_TRUE(test::wait_readable(report[0], 20s));
  char text[16] = {};
  ASSERT_GT(::read(report[0], text, sizeof text - 1), 0);
  const Address address = Address::ipv4("127.0.0.1", static_cast<std::uint16_t>(std::stoi(text)));
  Socket client = create_connection(address, 5s);  // waits in the backlog: accept gets EMFILE
  client.settimeout(10s);
  client.sendall("hello\n");
  auto log_text = [&] {
    std::ifstream in(log_path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const auto deadline = Clock::now() + 10s;
  while (log_text().find("retrying in") == std::string::npos && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  const std::string logged = log_text();
  EXPECT_NE(logged.find("Too many open files; retrying in"), std::string::npos) << logged;
  EXPECT_NE(logged.find("WARNING"), std::string::npos) << logged;
  EXPECT_LT(cpu_share(child, 1s), 0.3) << "the accept loop spins while out of descriptors";
  EXPECT_FALSE(test::wait_readable(client.fileno(), 0ms)) << "served without a descriptor?";
  ASSERT_EQ(::write(control[1], "r", 1), 1);  // descriptors free up
  EXPECT_EQ(recv_line(client), "HELLO\n");
  ASSERT_EQ(::write(control[1], "q", 1), 1);
  int status = 0;
  const auto exit_deadline = Clock::now() + 10s;
  pid_t done = 0;
  while ((done = ::waitpid(child, &status, WNOHANG)) == 0 && Clock::now() < exit_deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(done, child) << "the server did not stop";
  reaper.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace sockserv
