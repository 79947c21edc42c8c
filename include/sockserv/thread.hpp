// SPDX-License-Identifier: MIT
/// @file
/// Thread: a joinable std::thread with a Python-style name ("Thread-1", "Thread-2", ...), so the
/// seed's ThreadingMixIn example prints the same thread names as Python does.
///
/// ```
///   sockserv::Thread t([&] { server.serve_forever(); });
///   std::cout << "Server loop running in thread: " << t.name() << '\n';   // Thread-1
/// ```
///
/// Numbers come from one process-wide counter, as in Python's threading module; the main thread
/// is "MainThread". Ownership: like std::jthread, the destructor joins.
#pragma once

#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace sockserv {

/// The name of the calling thread: its Thread name, "MainThread" for the thread that ran main(),
/// or `"Dummy-<id>"` for a thread sockserv did not start.
/// @python threading.current_thread().name
std::string current_thread_name();

namespace detail {
std::string next_thread_name();
// Names the calling thread `*name` (nullptr: forgets it); `*name` must live until then.
void set_current_thread_name(const std::string* name) noexcept;
}  // namespace detail

/// A thread with a name, joined by its destructor (like std::jthread, without a stop token).
/// Move-only.
/// @threadsafety As std::thread: one owner at a time.
/// @python threading.Thread (started at construction; the destructor is join())
class Thread {
 public:
  /// No thread (joinable() is false, the name is empty).
  Thread() = default;
  /// Starts a thread named "Thread-N" (the next number) that runs `body`. An exception leaving
  /// `body` ends the process (std::terminate), as with std::thread.
  /// @throws std::system_error when the thread cannot be started.
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
  /// Takes over the other's thread and name; assignment joins this one's thread first.
  /// @{
  Thread(Thread&&) noexcept = default;
  Thread& operator=(Thread&& other) noexcept {
    if (thread_.joinable()) thread_.join();
    thread_ = std::move(other.thread_);
    name_ = std::move(other.name_);
    return *this;
  }
  /// @}
  /// Joins the thread, if it is still joinable.
  ~Thread() {
    if (thread_.joinable()) thread_.join();
  }

  /// "Thread-N".
  /// @python threading.Thread.name
  const std::string& name() const noexcept { return name_; }
  /// True until join(), as std::thread::joinable.
  bool joinable() const noexcept { return thread_.joinable(); }
  /// Waits for the thread to end.
  /// @throws std::system_error when not joinable, or when joining itself.
  /// @python threading.Thread.join
  void join() { thread_.join(); }
  /// The std::thread id.
  /// @python threading.Thread.ident
  std::thread::id get_id() const noexcept { return thread_.get_id(); }

 private:
  std::string name_;
  std::thread thread_;
};

}  // namespace sockserv
