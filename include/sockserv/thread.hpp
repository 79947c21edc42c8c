// SPDX-License-Identifier: MIT
// Thread: a joinable std::thread with a Python-style name ("Thread-1", "Thread-2", ...), so the
// seed's ThreadingMixIn example prints the same thread names as Python does.
//
//   sockserv::Thread t([&] { server.serve_forever(); });
//   std::cout << "Server loop running in thread: " << t.name() << '\n';   // Thread-1
//
// Numbers come from one process-wide counter, as in Python's threading module; the main thread
// is "MainThread". Ownership: like std::jthread, the destructor joins.
#pragma once

#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace sockserv {

// The name of the calling thread: its Thread name, "MainThread" for the thread that ran main(),
// or "Dummy-<id>" for a thread sockserv did not start.
std::string current_thread_name();

namespace detail {
std::string next_thread_name();
// Names the calling thread `*name` (nullptr: forgets it); `*name` must live until then.
void set_current_thread_name(const std::string* name) noexcept;
}  // namespace detail

class Thread {
 public:
  Thread() = default;
  // (Constrained, so it never hides the move constructor; clang-tidy 14 does not see that.)
  template <class F>
  // NOLINTNEXTLINE(bugprone-forwarding-reference-overload)
  requires(!std::is_same_v<std::remove_cvref_t<F>, Thread>) explicit Thread(F&& body)
      : name_(detail::next_thread_name()) {
    thread_ = std::thread([name = name_, body = std::forward<F>(body)]() mutable {
      detail::set_current_thread_name(&name);
      body();
      detail::set_current_thread_name(nullptr);
    });
  }
  Thread(Thread&&) noexcept = default;
  Thread& operator=(Thread&& other) noexcept {
    if (thread_.joinable()) thread_.join();
    thread_ = std::move(other.thread_);
    name_ = std::move(other.name_);
    return *this;
  }
  ~Thread() {
    if (thread_.joinable()) thread_.join();
  }

  const std::string& name() const noexcept { return name_; }
  bool joinable() const noexcept { return thread_.joinable(); }
  void join() { thread_.join(); }
  std::thread::id get_id() const noexcept { return thread_.get_id(); }

 private:
  std::string name_;
  std::thread thread_;
};

}  // namespace sockserv
