// SPDX-License-Identifier: MIT
#include <sockserv/thread.hpp>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace sockserv {
namespace {

std::atomic<unsigned> thread_counter{0};
thread_local std::string thread_name;

}  // namespace

namespace detail {

std::string next_thread_name() { return "Thread-" + std::to_string(++thread_counter); }

void set_current_thread_name(std::string name) {
  // The kernel's name (top -H, gdb) is limited to 15 characters; ours is not.
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
  thread_name = std::move(name);
}

}  // namespace detail

std::string current_thread_name() {
  if (!thread_name.empty()) return thread_name;
  if (::getpid() == static_cast<pid_t>(::syscall(SYS_gettid))) return "MainThread";
  return "Dummy-" + std::to_string(::syscall(SYS_gettid));
}

}  // namespace sockserv
