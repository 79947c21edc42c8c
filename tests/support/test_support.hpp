// SPDX-License-Identifier: MIT
// Helpers shared by the test suites: temporary directories for Unix sockets, loopback addresses
// and connected pairs, a descriptor count for leak checks, and child processes with pipes (for
// running the example programs, Python and nc as real peers).
//
// Network rule of the suite: only loopback (127.0.0.1, ::1) and Unix sockets in a TempDir; every
// server binds port 0 and reads its real port back.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <gtest/gtest.h>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace sockserv::test {

// Passes only when `f()` throws an E (or a subclass) whose code() compares equal to `code` (an
// errno condition such as std::errc::timed_out, or a sockserv::errc). Nothing thrown, another
// exception type or another code all fail, with what() in the message.
template <class E, class F, class Code>
testing::AssertionResult throws_code(F&& f, Code code) {
  try {
    f();
  } catch (const E& e) {
    if (e.code() == code) return testing::AssertionSuccess();
    return testing::AssertionFailure() << "wrong code " << e.code() << ": " << e.what();
  } catch (const std::exception& e) {
    return testing::AssertionFailure() << "wrong exception type: " << e.what();
  }
  return testing::AssertionFailure() << "nothing was thrown";
}

// A fresh directory under /tmp (mkdtemp), removed with everything in it by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const noexcept { return path_; }
  // `name` inside the directory, e.g. path("server.sock").
  std::string path(std::string_view name) const;

 private:
  std::string path_;
};

// 127.0.0.1:0 and [::1]:0 (bind them and read the port back with getsockname()).
Address loopback4();
Address loopback6();
// True when a socket can bind to ::1 (some containers have no IPv6).
bool ipv6_available();
// A name no other test uses in Linux's abstract namespace: "sockserv-test-PID-N".
std::string unique_abstract_name();

// A connected TCP pair over 127.0.0.1: {client, server side of accept()}.
std::pair<Socket, Socket> tcp_pair();

// A client connected to `address` (any stream family), with `timeout` for every later call.
Socket connect_to(const Address& address,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
// One line up to and including '\n', a byte at a time (so nothing after it is consumed); what
// came before EOF if the peer closed first.
std::string recv_line(Socket& sock);
// The value of the last " key=N" in `text` (a server's logged counters), or -1.
long long last_value(const std::string& text, const std::string& key);
// Reads until EOF or a reset: true when the server ended the connection before the socket's
// timeout (false after a TimeoutError).
bool ended_by_server(Socket& sock);
// True when `text` contains `part` (log and output checks).
inline bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The number of open descriptors of this process (entries in /proc/self/fd).
std::size_t count_open_fds();

// Waits until thread `tid` (from gettid()) sleeps in the kernel, i.e. is blocked in a system call
// (state S in /proc/self/task/TID/stat); false when `timeout` passes first.
bool wait_until_blocked(pid_t tid, std::chrono::milliseconds timeout);

// Polls `done` every millisecond until it is true (true) or `limit` passes (false): for state
// another thread updates after the effect a client sees (a counter bumped once a reply is sent).
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Waits until `fd` is readable (or has an error or hang-up); false when `timeout` passes first.
bool wait_readable(int fd, std::chrono::milliseconds timeout);

// A child process with pipes on its stdin, stdout and stderr. The destructor kills a child that
// is still running (SIGKILL to its PID) and reaps it, so a failed assertion leaves no orphan.
// Not thread-safe.
class Process {
 public:
  // Starts argv[0], searched in PATH, with the default signal dispositions and an empty signal
  // mask. Throws std::system_error when it cannot be started.
  explicit Process(const std::vector<std::string>& argv);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const noexcept { return pid_; }

  // Writes all of `data` to the child's stdin, reading its output meanwhile so that neither side
  // blocks on a full pipe. Returns false when the timeout passes or the child closed its stdin.
  bool write_stdin(std::string_view data,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void close_stdin() noexcept;

  // The next line of stdout without its '\n'; nullopt at EOF or when `timeout` passes first.
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads stdout and stderr until both reach EOF; false when `timeout` passes first.
  bool read_to_eof(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // What was read so far and not returned by read_line().
  const std::string& out() const noexcept { return out_; }
  const std::string& err() const noexcept { return err_; }

  // kill(pid, sig) while the child has not been reaped.
  void kill(int sig) noexcept;
  // Reaps the child: its exit code, or -N when signal N ended it (Python's returncode). When
  // `timeout` passes first, the child is killed with SIGKILL and nullopt is returned.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  // One poll() round over the open pipes, until `deadline`; false when nothing is left to read.
  bool pump(std::chrono::steady_clock::time_point deadline, std::string_view* input = nullptr);

  pid_t pid_ = -1;
  int in_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  std::string out_;
  std::string err_;
};

struct CommandResult {
  int exit_code = -1;  // -N when signal N ended it
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs a command to completion with `stdin_data` on its stdin. After `timeout` the child is
// killed (SIGKILL to its PID) and timed_out is set.
CommandResult run_command(const std::vector<std::string>& argv, std::string_view stdin_data = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The Python interpreter to run peers with.
std::string python3();
// True when `program` is found in PATH and can be executed.
bool have_program(std::string_view program);

}  // namespace sockserv::test
