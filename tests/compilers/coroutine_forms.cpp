// SPDX-License-Identifier: MIT
// The natural ways of testing an awaited result (while, for, do-while, if, !, ternary, switch,
// &&, .empty() on the result), each run on a real event loop reading a Unix socketpair, in a
// coroutine that declares a local variable and in one that declares none.
//
// Built with the project's compiler by the test suite and with both g++ and clang++ against the
// installed package by scripts/check-install.sh. Every form must compute the right answer in a
// coroutine with a local. In a coroutine without one, GCC before 13 miscompiles the forms whose
// condition holds a co_await (GCC bug 106188, task.hpp): there the form must either compute the
// right answer or stop the program with the library's message, never do something else. Each
// bare form runs in a child process so that stop can be observed. Exit status 0: all as required.
#include <sockserv/aio/connection.hpp>
#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/task.hpp>
#include <sockserv/socket.hpp>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

using sockserv::aio::Connection;
using sockserv::aio::Task;

namespace {

// What each form computes. A global, so the bare coroutines need no variable of their own.
int count = 0;

Task<bool> has_byte(Connection& conn) { co_return !(co_await conn.recv(1)).empty(); }

// FORM(name, expected, body) defines name_bare (no local variable) and name_local (one local).
// clang-format off
#define FORM(name, expected, ...)                            \
  Task<void> name##_bare(Connection& conn) { __VA_ARGS__ }   \
  Task<void> name##_local(Connection& conn) {                \
    [[maybe_unused]] const int local = 0;                    \
    __VA_ARGS__                                              \
  }                                                          \
  constexpr int name##_expected = expected;

// The peer sends "abc" and then closes its side: three one-byte reads, then EOF.
FORM(while_not_empty, 3, while (!(co_await conn.recv(1)).empty()) ++count;)
FORM(for_condition, 3, for (; !(co_await conn.recv(1)).empty();) ++count;)
FORM(do_while, 4, do ++count; while (!(co_await conn.recv(1)).empty());)
FORM(while_task, 3, while (co_await has_byte(conn)) ++count;)
FORM(if_not_task, 1, if (!co_await has_byte(conn)) count = -1; else count = 1;)
FORM(ternary, 1, count = co_await has_byte(conn) ? 1 : -1;)
FORM(switch_size, 1, switch ((co_await conn.recv(1)).size()) { case 1: count = 1; break; default: count = -1; })
FORM(logical_and, 2, if (co_await has_byte(conn) && co_await has_byte(conn)) count = 2;)
// clang-format on
#undef FORM

struct Form {
  std::string_view name;
  Task<void> (*bare)(Connection&);
  Task<void> (*local)(Connection&);
  int expected;
};

#define ENTRY(name) \
  Form { #name, name##_bare, name##_local, name##_expected }
const std::array forms{ENTRY(while_not_empty), ENTRY(for_condition), ENTRY(do_while),
                       ENTRY(while_task),      ENTRY(if_not_task),   ENTRY(ternary),
                       ENTRY(switch_size),     ENTRY(logical_and)};
#undef ENTRY

// Runs one coroutine against a peer that sends "abc" and closes; true when it computed `want`.
bool run(Task<void> (*form)(Connection&), int want) {
  auto [mine, peer] = sockserv::socketpair();
  peer.sendall("abc");
  peer.shutdown(SHUT_WR);
  count = 0;
  sockserv::aio::EventLoop loop;
  auto body = [](sockserv::Socket sock, Task<void> (*f)(Connection&)) -> Task<void> {
    Connection conn(std::move(sock));
    co_await f(conn);
  };
  loop.run_until_complete(body(std::move(mine), form));
  return count == want;
}

// Runs a bare form in a child. "ok", "stopped" (the library's GCC 12 message, allowed only
// where the library checks frames) or "WRONG".
std::string_view run_bare(const Form& form) {
  std::array<int, 2> pipe_fds{};
  if (pipe(pipe_fds.data()) != 0) return "WRONG (pipe)";
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    _exit(run(form.bare, form.expected) ? 0 : 1);
  }
  close(pipe_fds[1]);
  std::string said;
  std::array<char, 512> chunk{};
  for (ssize_t n; (n = read(pipe_fds[0], chunk.data(), chunk.size())) > 0;)
    said.append(chunk.data(), n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "ok";
  const bool stopped = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
                       said.find("GCC bug 106188") != std::string::npos;
  if (stopped && SOCKSERV_AIO_CHECK_COROUTINE_FRAMES) return "stopped with the GCC 12 message";
  std::fprintf(stderr, "%s", said.c_str());
  return "WRONG";
}

}  // namespace

int main() {
  int failures = 0;
  for (const Form& form : forms) {
    const bool local_ok = run(form.local, form.expected);
    const std::string_view bare = run_bare(form);
    std::printf("%-16s with a local: %-5s without: %.*s\n", std::string(form.name).c_str(),
                local_ok ? "ok" : "WRONG", static_cast<int>(bare.size()), bare.data());
    failures += (local_ok ? 0 : 1) + (bare.starts_with("WRONG") ? 1 : 0);
  }
  return failures == 0 ? 0 : 1;
}
