// SPDX-License-Identifier: MIT
#include "support/test_support.hpp"

#include <sockserv/error.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <thread>

extern char** environ;

namespace sockserv::test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_system(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Milliseconds left until `deadline`, for poll(); never negative.
int ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// write(2) to a pipe whose reader may be gone: SIGPIPE is blocked in this thread for the call and
// a SIGPIPE it raised is consumed, so the caller just sees EPIPE.
ssize_t write_no_sigpipe(int fd, std::string_view data) noexcept {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const ssize_t n = ::write(fd, data.data(), data.size());
  const int saved = errno;
  if (n < 0 && saved == EPIPE) {
    const timespec zero{};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

int decode_status(int status) noexcept {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

}  // namespace

// ---- TempDir ----------------------------------------------------------------------------------

TempDir::TempDir() {
  std::string pattern = "/tmp/sockserv-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw_system("mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::path(std::string_view name) const { return path_ + "/" + std::string(name); }

// ---- Addresses and sockets --------------------------------------------------------------------

Address loopback4() { return Address::ipv4("127.0.0.1", 0); }
Address loopback6() { return Address::ipv6("::1", 0); }

bool ipv6_available() {
  try {
    Socket probe(AF_INET6, SOCK_STREAM);
    probe.bind(loopback6());
    return true;
  } catch (const SocketError&) {
    return false;
  }
}

std::string unique_abstract_name() {
  static std::atomic<unsigned> counter{0};
  return "sockserv-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

Socket connect_to(const Address& address, std::chrono::milliseconds timeout) {
  Socket sock(address.family(), SOCK_STREAM);
  sock.settimeout(timeout);
  sock.connect(address);
  return sock;
}

long long last_value(const std::string& text, const std::string& key) {
  const auto at = text.rfind(" " + key + "=");
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size() + 2));
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

bool ended_by_server(Socket& sock) {
  try {
    while (!sock.recv(65536).empty()) {
    }
    return true;
  } catch (const ConnectionError&) {
    return true;
  } catch (const TimeoutError&) {
    return false;
  }
}

std::pair<Socket, Socket> tcp_pair() {
  ServerOptions options;
  options.backlog = 1;
  Socket listener = create_server(loopback4(), options);
  Socket client = create_connection(listener.getsockname());
  auto accepted = listener.accept();
  return {std::move(client), std::move(accepted.first)};
}

std::size_t count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) throw_system("opendir /proc/self/fd");
  std::size_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory stream's own descriptor
}

bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, ms_until(deadline));
    if (n > 0) return true;
    if (n == 0 && Clock::now() >= deadline) return false;
    if (n < 0 && errno != EINTR) throw_system("poll");
  }
}

bool wait_until_blocked(pid_t tid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  do {
    std::ifstream stat(path);
    const std::string text((std::istreambuf_iterator<char>(stat)),
                           std::istreambuf_iterator<char>());
    // "TID (comm) S ...": the state follows the last ')' (comm may contain one).
    const auto paren = text.rfind(')');
    if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'S') {
      return true;
    }
    std::this_thread::yield();
  } while (Clock::now() < deadline);
  return false;
}

// ---- Process ----------------------------------------------------------------------------------

Process::Process(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::invalid_argument("Process: empty argv");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  // Three pipes, close-on-exec so that children started by other threads do not inherit them;
  // dup2 in the child clears the flag on the copies that become its 0, 1 and 2.
  int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  for (auto& p : pipes) {
    if (::pipe2(p, O_CLOEXEC) != 0) throw_system("pipe2");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipes[0][0], 0);
  posix_spawn_file_actions_adddup2(&actions, pipes[1][1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipes[2][1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const int rc = ::posix_spawnp(&pid_, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipes[0][0]);
  ::close(pipes[1][1]);
  ::close(pipes[2][1]);
  in_ = pipes[0][1];
  stdout_ = pipes[1][0];
  stderr_ = pipes[2][0];
  // Our ends are non-blocking: a large write to stdin must not block while the child waits for
  // us to read its stdout (each side would wait for the other forever).
  for (const int fd : {in_, stdout_, stderr_})
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (rc != 0) {
    pid_ = -1;
    close_stdin();
    close_fd(stdout_);
    close_fd(stderr_);
    throw std::system_error(rc, std::generic_category(), "posix_spawnp " + argv[0]);
  }
}

Process::~Process() {
  close_stdin();
  close_fd(stdout_);
  close_fd(stderr_);
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void Process::close_stdin() noexcept { close_fd(in_); }

bool Process::pump(Clock::time_point deadline, std::string_view* input) {
  pollfd fds[3] = {{stdout_, POLLIN, 0}, {stderr_, POLLIN, 0}, {-1, POLLOUT, 0}};
  if (input != nullptr && !input->empty()) fds[2].fd = in_;
  if (fds[0].fd < 0 && fds[1].fd < 0 && fds[2].fd < 0) return false;
  const int n = ::poll(fds, 3, ms_until(deadline));
  if (n < 0) return errno == EINTR;
  if (n == 0) return Clock::now() < deadline;
  char chunk[16384];
  int* const sources[2] = {&stdout_, &stderr_};
  std::string* const sinks[2] = {&out_, &err_};
  for (int i = 0; i < 2; ++i) {
    if (fds[i].revents == 0) continue;
    const ssize_t got = ::read(*sources[i], chunk, sizeof chunk);
    if (got > 0) sinks[i]->append(chunk, static_cast<std::size_t>(got));
    if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) close_fd(*sources[i]);
  }
  if (fds[2].revents != 0) {
    const ssize_t put = write_no_sigpipe(in_, *input);
    if (put > 0) input->remove_prefix(static_cast<std::size_t>(put));
    if (put < 0 && errno != EINTR && errno != EAGAIN) return false;
  }
  return true;
}

bool Process::write_stdin(std::string_view data, std::chrono::milliseconds timeout) {
  if (in_ < 0) return data.empty();
  const auto deadline = Clock::now() + timeout;
  while (!data.empty()) {
    if (!pump(deadline, &data)) return false;
  }
  return true;
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (const auto nl = out_.find('\n'); nl != std::string::npos) {
      std::string line = out_.substr(0, nl);
      out_.erase(0, nl + 1);
      return line;
    }
    if (stdout_ < 0 || !pump(deadline)) return std::nullopt;
  }
}

bool Process::read_to_eof(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (stdout_ >= 0 || stderr_ >= 0) {
    if (!pump(deadline)) return false;
  }
  return true;
}

void Process::kill(int sig) noexcept {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = Clock::now() + timeout;
  // A pidfd becomes readable when the child exits, so the wait needs no polling interval. The
  // pipes are drained meanwhile: a child blocked on a full stdout would never exit.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) break;
    if (Clock::now() >= deadline) {
      if (pidfd >= 0) ::close(pidfd);
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
      return std::nullopt;
    }
    // Negative descriptors (no pidfd, pipes at EOF) are ignored by poll(). Without a pidfd (an
    // old kernel), look again every 5 ms; the deadline still bounds the loop.
    pollfd fds[3] = {{pidfd, POLLIN, 0}, {stdout_, POLLIN, 0}, {stderr_, POLLIN, 0}};
    const int wait_ms = pidfd >= 0 ? ms_until(deadline) : std::min(ms_until(deadline), 5);
    if (::poll(fds, 3, wait_ms) > 0 && (fds[1].revents | fds[2].revents) != 0) {
      pump(Clock::now());
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  pid_ = -1;
  return decode_status(status);
}

CommandResult run_command(const std::vector<std::string>& argv, std::string_view stdin_data,
                          std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto left = [&] {
    return std::max(std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()),
                    std::chrono::milliseconds(0));
  };
  Process child(argv);
  CommandResult result;
  child.write_stdin(stdin_data, left());
  child.close_stdin();
  child.read_to_eof(left());
  const auto code = child.wait(left());
  result.timed_out = !code.has_value();
  result.exit_code = code.value_or(-9);
  result.out = child.out();
  result.err = child.err();
  return result;
}

std::string python3() { return "python3"; }

bool have_program(std::string_view program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  const std::string_view dirs(path);
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const auto end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate =
        std::string(dirs.substr(start, end - start)) + "/" + std::string(program);
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace sockserv::test
