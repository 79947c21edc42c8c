// SPDX-License-Identifier: MIT
// The non-template parts of the mixins: the thread set and child-process bookkeeping.
#include <sockserv/error.hpp>
#include <sockserv/mixins.hpp>

#include "sys/report.hpp"

#include <sockserv/log.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <new>
#include <thread>

namespace sockserv::detail {

std::list<WorkerSet::Worker>::iterator WorkerSet::add(int fd) {
  std::lock_guard lock(mutex_);
  workers_.emplace_back();
  auto it = std::prev(workers_.end());
  it->fd = fd;
  return it;
}

void WorkerSet::mark_done(std::list<Worker>::iterator worker) noexcept {
  std::lock_guard lock(mutex_);
  worker->done = true;
  worker->fd = -1;
  changed_.notify_all();
}

void WorkerSet::reap_finished() {
  std::list<Worker> finished;
  {
    std::lock_guard lock(mutex_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      const auto next = std::next(it);
      if (it->done) finished.splice(finished.end(), workers_, it);
      it = next;
    }
  }
  // Joined outside the lock: a finished thread may still be returning from mark_done().
  for (auto& w : finished) {
    if (w.thread.joinable()) w.thread.join();
  }
}

bool WorkerSet::join_all(Timeout limit) {
  {
    std::unique_lock lock(mutex_);
    auto all_done = [this] {
      for (const auto& w : workers_) {
        if (!w.done) return false;
      }
      return true;
    };
    if (!limit) {
      changed_.wait(lock, all_done);
    } else if (!changed_.wait_for(lock, *limit, all_done)) {
      lock.unlock();
      reap_finished();
      return false;
    }
  }
  reap_finished();
  return true;
}

void WorkerSet::shutdown_connections() noexcept {
  std::lock_guard lock(mutex_);
  for (const auto& w : workers_) {
    if (!w.done && w.fd >= 0) ::shutdown(w.fd, SHUT_RDWR);
  }
}

std::size_t WorkerSet::active() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& w : workers_) n += w.done ? 0 : 1;
  return n;
}

namespace {

// Reaps `pid` if it has ended; true when it is gone (reaped now, or not our child any more).
bool try_reap(pid_t pid, bool blocking) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, blocking ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  if (r < 0) return true;  // ECHILD: already reaped by someone else
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    sys::report_line("sockserv: child " + std::to_string(pid) + " killed by signal " +
                     std::to_string(sig) + " (" + ::strsignal(sig) + ")");
  }
  return true;
}

}  // namespace

void collect_children(std::set<pid_t>& children, std::size_t max_children, bool blocking) {
  // At the limit, wait until one of *our* children ends. waitpid(-1) would be one call, but it
  // can reap a child the program started for something else (Python's issue 1540386), so poll
  // our own pids every 5 ms instead.
  while (!children.empty() && children.size() >= max_children) {
    std::erase_if(children, [](pid_t pid) { return try_reap(pid, false); });
    if (children.size() >= max_children) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::erase_if(children, [blocking](pid_t pid) { return try_reap(pid, blocking); });
}

void close_children(std::set<pid_t>& children, Timeout grace) {
  if (grace) {
    const auto deadline = std::chrono::steady_clock::now() + *grace;
    while (!children.empty() && std::chrono::steady_clock::now() < deadline) {
      std::erase_if(children, [](pid_t pid) { return try_reap(pid, false); });
      if (!children.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (const pid_t pid : children) {
      log(LogLevel::warning, "sockserv: child " + std::to_string(pid) +
                                 " still running after the shutdown grace; sending SIGTERM");
      ::kill(pid, SIGTERM);
    }
  }
  std::erase_if(children, [](pid_t pid) { return try_reap(pid, true); });
}

pid_t fork_request() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // close_children() ends the children left after the grace with SIGTERM, so a child must be
    // able to receive it even when the parent blocks it (`sockserv serve` does, to read it from
    // a signalfd); the mask is inherited through fork().
    sigset_t term;
    ::sigemptyset(&term);
    ::sigaddset(&term, SIGTERM);
    ::pthread_sigmask(SIG_UNBLOCK, &term, nullptr);
  }
  return pid;
}

ChildCounters::ChildCounters(ServerStats& stats) noexcept : stats_(stats) {
  // Anonymous and shared: the children forked later see the same page. A lock-free atomic is
  // address-free, so its operations work across the processes that map it.
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
  void* page = ::mmap(nullptr, sizeof(ServerStats), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    log(LogLevel::warning, std::string("sockserv: no shared memory for the children's counters (") +
                               std::strerror(errno) + "): what they count will not be seen");
    return;
  }
  shared_ = new (page) ServerStats;
  stats_.from_children = shared_;
}

ChildCounters::~ChildCounters() {
  if (shared_ == nullptr) return;
  stats_.from_children = nullptr;
  shared_->~ServerStats();
  ::munmap(shared_, sizeof(ServerStats));
}

void ChildCounters::child_started() noexcept {
  stats_.from_children = nullptr;
  at_start_ = stats_.snapshot();
}

void ChildCounters::child_ending() noexcept {
  if (shared_ != nullptr) stats_.add_gains_since(at_start_, *shared_);
}

void exit_child(int status) noexcept {
  try {
    std::cout.flush();
    std::cerr.flush();
  } catch (...) {
  }
  std::fflush(nullptr);
  ::_exit(status);
}

}  // namespace sockserv::detail
