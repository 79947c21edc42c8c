// SPDX-License-Identifier: MIT
// ThreadingMixIn and ForkingMixIn: Python's mix-in classes as class templates over any server.
//
//   Python:  class ThreadingTCPServer(ThreadingMixIn, TCPServer): pass
//   C++:     using ThreadingTCPServer = ThreadingMixIn<TCPServer>;
//
// The mixin derives from the server it wraps and overrides its hooks; Base::process_request() is
// Python's super().process_request(). It composes with your own servers too:
// ThreadingMixIn<MyAuditedServer>. (docs/adr/0002-mixins.md says why a template and not a
// policy object.)
//
// A C++ destructor cannot call an override, so each mixin cleans up in its own destructor:
// ~ThreadingMixIn joins its threads, ~ForkingMixIn reaps its children. server_close() stays
// public and idempotent for an earlier, explicit close.
#pragma once

#include <sockserv/server.hpp>
#include <sockserv/thread.hpp>

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <utility>

namespace sockserv {
namespace detail {

// The live handler threads of a ThreadingMixIn (Python's _Threads): a thread that has finished
// is joined and forgotten at the next spawn, so the set grows with the live threads, not with
// the number of requests served (Python's bpo-37193). Thread-safe.
class WorkerSet {
 public:
  WorkerSet() = default;
  WorkerSet(const WorkerSet&) = delete;
  WorkerSet& operator=(const WorkerSet&) = delete;
  ~WorkerSet() { join_all(); }

  // Runs `body` on a new named Thread; `fd` is the request's connection (-1 if none), kept so
  // shutdown_connections() can interrupt a blocked handler.
  template <class Body>
  void spawn(int fd, Body&& body);
  // Waits until every worker has finished, or at most `limit` (then returns false).
  bool join_all(Timeout limit = std::nullopt);
  // Called (on the worker's thread) each time a worker has finished.
  std::function<void()> on_done;
  // shutdown(SHUT_RDWR) of every live worker's connection: blocked reads return EOF, so the
  // workers end soon (used for daemon_threads when the server is destroyed).
  void shutdown_connections() noexcept;
  // How many workers have not finished yet.
  std::size_t active() const;

 private:
  struct Worker {
    int fd = -1;
    bool done = false;
    Thread thread;
  };
  std::list<Worker>::iterator add(int fd);
  void mark_done(std::list<Worker>::iterator worker) noexcept;
  void reap_finished();

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::list<Worker> workers_;
};

template <class Body>
void WorkerSet::spawn(int fd, Body&& body) {
  reap_finished();
  auto worker = add(fd);
  try {
    worker->thread = Thread([this, worker, body = std::forward<Body>(body)]() mutable {
      body();
      mark_done(worker);
      if (on_done) on_done();
    });
  } catch (...) {
    mark_done(worker);
    throw;
  }
}

// Waits for and reaps finished children among `children` (only these pids: an unrelated child of
// the program is never reaped, unlike Python's waitpid(-1)). While there are max_children or
// more, blocks until enough of ours have exited. Logs a child that was killed by a signal.
void collect_children(std::set<pid_t>& children, std::size_t max_children, bool blocking);
// server_close() for forked children: waits up to `grace` for them (nullopt: as long as they
// take), then sends SIGTERM to those left (only ours) and reaps them all.
void close_children(std::set<pid_t>& children, Timeout grace);
// fork(), with stdout/stderr flushed first so buffered output is not printed twice.
pid_t fork_request();
// Ends a forked child: flushes stdio and _exit()s without running the parent's destructors.
[[noreturn]] void exit_child(int status) noexcept;

// Shared by the thread mixins: how server_close() ends the workers. Waits up to shutdown_grace
// for them, then shuts their connections down so blocked handlers return, then joins.
inline void close_workers(WorkerSet& workers, Timeout grace) {
  if (!workers.join_all(grace)) {
    workers.shutdown_connections();
    workers.join_all();
  }
}

}  // namespace detail

template <class Base>
class ThreadingMixIn : public Base {
 public:
  using Base::Base;
  ~ThreadingMixIn() override {
    // Handler threads refer to this server, so even daemon threads are waited for; their
    // connections are shut down first so they end promptly.
    if (daemon_threads || !block_on_close) workers_.shutdown_connections();
    workers_.join_all();
  }

  // Python's attributes and defaults. daemon_threads: server_close() does not wait for the
  // threads (the destructor still does, after shutting their connections down).
  bool daemon_threads = false;
  // server_close() waits for all handler threads (up to shutdown_grace).
  bool block_on_close = true;

  // Starts a thread that runs process_request_thread().
  void process_request(Request& request, const Address& client_address) override {
    if (!workers_.on_done) workers_.on_done = [this] { this->notify_capacity(); };
    const int fd = request.is_datagram() ? -1 : request.socket().fileno();
    workers_.spawn(fd, [this, request = std::move(request), client_address]() mutable {
      process_request_thread(request, client_address);
    });
  }

  // The thread's body: finish_request(), handle_error() on any exception (an exception may not
  // leave a thread), then shutdown_request(). May be overridden.
  virtual void process_request_thread(Request& request, const Address& client_address) {
    this->run_request(request, client_address);
  }

  // Ends the handler threads first (block_on_close), then closes. Python closes first, but a
  // datagram handler replies through the server's socket: closed under it, the reply fails, and
  // in C++ the descriptor number may already belong to another socket.
  void server_close() override {
    if (block_on_close && !daemon_threads) detail::close_workers(workers_, this->shutdown_grace);
    Base::server_close();
  }

  // Handler threads still running.
  std::size_t active_threads() const { return workers_.active(); }

 protected:
  bool at_capacity() override { return workers_.active() >= this->max_connections; }

 private:
  detail::WorkerSet workers_;
};

// A bounded pool instead of a thread per request: pool_size threads take requests from a queue
// of at most queue_size; when the queue is full the server stops accepting (connections wait in
// the kernel's backlog) until a worker frees a place. Threads start with the first request.
template <class Base>
class ThreadPoolMixIn : public Base {
 public:
  using Base::Base;
  ~ThreadPoolMixIn() override { stop_pool(std::nullopt); }

  std::size_t pool_size = 16;
  std::size_t queue_size = 64;

  void process_request(Request& request, const Address& client_address) override {
    std::lock_guard lock(mutex_);
    if (!started_) start_pool();
    queue_.emplace_back(std::move(request), client_address);
    ready_.notify_one();
  }

  // The workers first: a datagram request is answered through the server's socket.
  void server_close() override {
    stop_pool(this->shutdown_grace);
    Base::server_close();
  }

 protected:
  bool at_capacity() override {
    std::lock_guard lock(mutex_);
    return queue_.size() >= queue_size;
  }

 private:
  void start_pool() {
    started_ = true;
    for (std::size_t i = 0; i < pool_size; ++i) workers_.spawn(-1, [this] { work(); });
  }
  void work() {
    for (;;) {
      std::pair<Request, Address> job;
      int fd = -1;  // the running request's connection, for stop_pool() to cut after the grace
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing left to do
        job = std::move(queue_.front());
        queue_.pop_front();
        if (!job.first.is_datagram()) running_.insert(fd = job.first.socket().fileno());
      }
      this->notify_capacity();
      this->run_request(job.first, job.second);
      std::lock_guard lock(mutex_);
      if (const auto it = running_.find(fd); it != running_.end()) running_.erase(it);
    }
  }
  // Lets the workers finish the queue (up to `grace`); then the requests not started are closed
  // and the running ones' connections shut down, so blocked handlers return, and all are joined.
  void stop_pool(Timeout grace) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    if (!workers_.join_all(grace)) {
      std::deque<std::pair<Request, Address>> not_started;
      {
        std::lock_guard lock(mutex_);
        not_started.swap(queue_);
        for (const int fd : running_) ::shutdown(fd, SHUT_RDWR);
      }
      for (auto& job : not_started) this->shutdown_request(job.first);
      workers_.join_all();
    }
    std::lock_guard lock(mutex_);
    for (auto& job : queue_) this->shutdown_request(job.first);
    queue_.clear();
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::pair<Request, Address>> queue_;
  // Descriptors of the requests running now; a multiset, as a number closed by one worker may
  // already be another worker's new connection before the first has forgotten it.
  std::multiset<int> running_;
  bool started_ = false;
  bool stopping_ = false;
  detail::WorkerSet workers_;
};

template <class Base>
class ForkingMixIn : public Base {
 public:
  using Base::Base;
  // Python's ForkingMixIn sets timeout = 300, so handle_request() reaps children now and then.
  // (A base server with other constructors keeps them, through the using-declaration above,
  // without this default.)
  ForkingMixIn(const Address& address, RequestHandlerFactory handler, bool bind_and_activate = true)
      : Base(address, std::move(handler), bind_and_activate) {
    this->timeout = std::chrono::seconds(300);
  }
  ~ForkingMixIn() override { detail::collect_children(active_children, max_children, true); }

  std::set<pid_t> active_children;
  std::size_t max_children = 40;
  // server_close() waits for all children (up to shutdown_grace, then SIGTERM).
  bool block_on_close = true;

  void collect_children(bool blocking = false) {
    detail::collect_children(active_children, max_children, blocking);
    release_admissions();
  }
  void handle_timeout() override { collect_children(); }
  void service_actions() override {
    Base::service_actions();
    // Reaps without blocking; the max_children limit is kept by at_capacity(), so the loop
    // stays responsive to shutdown() while children run.
    detail::collect_children(active_children, std::numeric_limits<std::size_t>::max(), false);
    release_admissions();
  }

  // Forks; the parent closes its copy of the request, the child handles it and exits with 0
  // (or 1 after handle_error) without returning.
  void process_request(Request& request, const Address& client_address) override {
    if (const pid_t pid = detail::fork_request()) {
      active_children.insert(pid);
      // The client's place under the access policy lasts as long as the child.
      if (Admission admission = request.take_admission()) admissions_[pid] = std::move(admission);
      this->close_request(request);
      return;
    }
    const auto errors_before = this->stats.handler_errors.load();
    this->run_request(request, client_address);
    detail::exit_child(this->stats.handler_errors.load() == errors_before ? 0 : 1);
  }

  void server_close() override {
    Base::server_close();
    if (block_on_close) detail::close_children(active_children, this->shutdown_grace);
    release_admissions();
  }

 protected:
  bool at_capacity() override {
    if (active_children.size() < max_children) return false;
    detail::collect_children(active_children, std::numeric_limits<std::size_t>::max(), false);
    release_admissions();
    return active_children.size() >= max_children;
  }

 private:
  // Admissions of children that have been reaped end (their client's place is free again).
  void release_admissions() {
    std::erase_if(admissions_,
                  [this](const auto& entry) { return active_children.count(entry.first) == 0; });
  }
  std::map<pid_t, Admission> admissions_;
};

using ThreadingTCPServer = ThreadingMixIn<TCPServer>;
using ThreadingUDPServer = ThreadingMixIn<UDPServer>;
using ThreadingUnixStreamServer = ThreadingMixIn<UnixStreamServer>;
using ThreadingUnixDatagramServer = ThreadingMixIn<UnixDatagramServer>;
using ForkingTCPServer = ForkingMixIn<TCPServer>;
using ForkingUDPServer = ForkingMixIn<UDPServer>;
using ForkingUnixStreamServer = ForkingMixIn<UnixStreamServer>;
using ForkingUnixDatagramServer = ForkingMixIn<UnixDatagramServer>;
using ThreadPoolTCPServer = ThreadPoolMixIn<TCPServer>;
using ThreadPoolUDPServer = ThreadPoolMixIn<UDPServer>;
using ThreadPoolUnixStreamServer = ThreadPoolMixIn<UnixStreamServer>;
using ThreadPoolUnixDatagramServer = ThreadPoolMixIn<UnixDatagramServer>;

}  // namespace sockserv
