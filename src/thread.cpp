// SPDX-License-Identifier: MIT
#include <sockserv/thread.hpp>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace sockserv {
namespace {

std::atomic<unsigned> thread_counter{0};
// A pointer to the name the Thread's body holds, not a string: a thread_local with a destructor
// makes glibc allocate in every thread, and that first allocation costs each thread its own
// malloc cache (about 1 KiB of memory per connection in a threading server).
thread_local const std::string* thread_name = nullptr;

}  // namespace

namespace detail {

std::string next_thread_name() { return "Thread-" + std::to_string(++thread_counter); }

void set_current_thread_name(const std::string* name) noexcept {
  // The kernel's name (top -H, gdb) is limited to 15 characters; ours is not.
  if (name) {
    char kernel_name[16] = {};
    name->copy(kernel_name, sizeof kernel_name - 1);
    ::pthread_setname_np(::pthread_self(), kernel_name);
  }
  thread_name = name;
}

}  // namespace detail

std::string current_thread_name() {
  if (thread_name) return *thread_name;
  if (::getpid() == static_cast<pid_t>(::syscall(SYS_gettid))) return "MainThread";
  return "Dummy-" + std::to_string(::syscall(SYS_gettid));
}

}  // namespace sockserv
