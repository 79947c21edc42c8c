// SPDX-License-Identifier: MIT
/// @file
/// ThreadingMixIn and ForkingMixIn: Python's mix-in classes as class templates over any server.
///
/// ```
///   Python:  class ThreadingTCPServer(ThreadingMixIn, TCPServer): pass
///   C++:     using ThreadingTCPServer = ThreadingMixIn<TCPServer>;
/// ```
///
/// The mixin derives from the server it wraps and overrides its hooks; Base::process_request() is
/// Python's super().process_request(). It composes with your own servers too:
/// `ThreadingMixIn<MyAuditedServer>`. (docs/adr/0002-mixins.md says why a template and not a
/// policy object.)
///
/// A C++ destructor cannot call an override, so each mixin cleans up in its own destructor:
/// ~ThreadingMixIn joins its threads, ~ForkingMixIn reaps its children. server_close() stays
/// public and idempotent for an earlier, explicit close.
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

// A forking server's counters for what its children do: a ServerStats in anonymous shared
// memory, linked as the server's stats.from_children. A child inherits the mapping and adds
// what it counted when it ends, so the parent's counters (--stats, --metrics) include its
// children's bytes, errors, resets and timeouts. A child killed by a signal adds nothing.
class ChildCounters {
 public:
  explicit ChildCounters(ServerStats& stats) noexcept;
  ~ChildCounters();
  ChildCounters(const ChildCounters&) = delete;
  ChildCounters& operator=(const ChildCounters&) = delete;

  // In the child, just after fork(): its counters are its own from here (their values now are
  // the parent's, left out of what it reports).
  void child_started() noexcept;
  // In the child, before it exits: adds what it counted since child_started().
  void child_ending() noexcept;

 private:
  ServerStats& stats_;
  ServerStats* shared_ = nullptr;  // nullptr: no shared memory; children's counts are lost
  ServerStatsSnapshot at_start_{};
};

// Shared by the thread mixins: how server_close() ends the workers. Waits up to shutdown_grace
// for them, then shuts their connections down so blocked handlers return, then joins.
inline void close_workers(WorkerSet& workers, Timeout grace) {
  if (!workers.join_all(grace)) {
    workers.shutdown_connections();
    workers.join_all();
  }
}

}  // namespace detail

/// Handles each request in a new thread (a named sockserv::Thread), up to max_connections at
/// once; `Base` is any server. Handler errors stay in their thread: they reach handle_error().
/// @threadsafety As the Base server; the handlers run concurrently, so what they share (the
/// server, its handler factory) must be safe to use from many threads.
/// @python socketserver.ThreadingMixIn
template <class Base>
class ThreadingMixIn : public Base {
 public:
  using Base::Base;
  /// Shuts down the handlers' connections when daemon_threads (or !block_on_close), then joins
  /// every handler thread: they refer to this server.
  ~ThreadingMixIn() override {
    // Handler threads refer to this server, so even daemon threads are waited for; their
    // connections are shut down first so they end promptly.
    if (daemon_threads || !block_on_close) workers_.shutdown_connections();
    workers_.join_all();
  }

  /// Python's attribute and default: with daemon_threads, server_close() does not wait for the
  /// threads (the destructor still does, after shutting their connections down).
  /// @python socketserver.ThreadingMixIn.daemon_threads
  bool daemon_threads = false;
  /// server_close() waits for all handler threads (up to shutdown_grace).
  /// @python socketserver.ThreadingMixIn.block_on_close
  bool block_on_close = true;

  /// Starts a thread that runs process_request_thread(); the request moves into it.
  /// @throws std::system_error when the thread cannot be started (the request is then closed
  ///         by the serving loop's error path).
  /// @python socketserver.ThreadingMixIn.process_request
  void process_request(Request& request, const Address& client_address) override {
    if (!workers_.on_done) workers_.on_done = [this] { this->notify_capacity(); };
    const int fd = request.is_datagram() ? -1 : request.socket().fileno();
    workers_.spawn(fd, [this, request = std::move(request), client_address]() mutable {
      process_request_thread(request, client_address);
    });
  }

  /// The thread's body: finish_request(), handle_error() on any exception (an exception may not
  /// leave a thread), then shutdown_request(). May be overridden.
  /// @python socketserver.ThreadingMixIn.process_request_thread
  virtual void process_request_thread(Request& request, const Address& client_address) {
    this->run_request(request, client_address);
  }

  /// Ends the handler threads first (block_on_close), then closes. Python closes first, but a
  /// datagram handler replies through the server's socket: closed under it, the reply fails, and
  /// in C++ the descriptor number may already belong to another socket. Threads still running
  /// after shutdown_grace have their connections shut down, then are joined.
  /// @python socketserver.ThreadingMixIn.server_close
  void server_close() override {
    if (block_on_close && !daemon_threads) detail::close_workers(workers_, this->shutdown_grace);
    Base::server_close();
  }

  /// Handler threads still running.
  /// @threadsafety Safe from any thread.
  std::size_t active_threads() const { return workers_.active(); }

 protected:
  /// True while max_connections handler threads run.
  bool at_capacity() override { return workers_.active() >= this->max_connections; }

 private:
  detail::WorkerSet workers_;
};

/// A bounded pool instead of a thread per request: pool_size threads take requests from a queue
/// of at most queue_size; when the queue is full the server stops accepting (connections wait in
/// the kernel's backlog) until a worker frees a place. Threads start with the first request.
/// Python has no such mixin (concurrent.futures.ThreadPoolExecutor is the nearest).
/// @threadsafety As ThreadingMixIn.
template <class Base>
class ThreadPoolMixIn : public Base {
 public:
  using Base::Base;
  /// Lets the workers finish the queue, then joins them (no grace limit).
  ~ThreadPoolMixIn() override { stop_pool(std::nullopt); }

  /// Worker threads; set before serving.
  std::size_t pool_size = 16;
  /// Requests that may wait for a worker before the server stops accepting.
  std::size_t queue_size = 64;

  /// Queues the request for a worker (starting the pool on the first request).
  /// @throws std::system_error when the pool's threads cannot be started.
  void process_request(Request& request, const Address& client_address) override {
    std::lock_guard lock(mutex_);
    if (!started_) start_pool();
    queue_.emplace_back(std::move(request), client_address);
    ready_.notify_one();
  }

  /// Stops the pool first (the workers finish the queue, up to shutdown_grace; then requests not
  /// started are closed and running ones' connections shut down), then closes: a datagram
  /// request is answered through the server's socket.
  void server_close() override {
    stop_pool(this->shutdown_grace);
    Base::server_close();
  }

 protected:
  /// True while the queue is full.
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

/// Handles each request in a forked child process, up to max_children at once; the parent
/// reaps them (only its own children) in service_actions() and handle_timeout().
///
/// Warning: fork() copies only the calling thread. Fork a server only from a process whose
/// other threads hold no lock the child needs (a running aio::EventLoop, a logging thread or a
/// ThreadingMixIn server in the same process are such threads); the child must not touch them.
/// @threadsafety As the Base server; children share nothing with the parent after fork().
/// @python socketserver.ForkingMixIn
template <class Base>
class ForkingMixIn : public Base {
 public:
  using Base::Base;
  /// Python's ForkingMixIn sets timeout = 300, so handle_request() reaps children now and then.
  /// (A base server with other constructors keeps them, through the using-declaration above,
  /// without this default.)
  /// Throws what Base's constructor throws.
  ForkingMixIn(const Address& address, RequestHandlerFactory handler, bool bind_and_activate = true)
      : Base(address, std::move(handler), bind_and_activate) {
    this->timeout = std::chrono::seconds(300);
  }
  /// Reaps the children, waiting while max_children or more still run.
  ~ForkingMixIn() override { detail::collect_children(active_children, max_children, true); }

  /// The pids of children still running.
  /// @python socketserver.ForkingMixIn.active_children
  std::set<pid_t> active_children;
  /// The most children at once; at the limit the server stops accepting.
  /// @python socketserver.ForkingMixIn.max_children
  std::size_t max_children = 40;
  /// server_close() waits for all children (up to shutdown_grace, then SIGTERM).
  /// @python socketserver.ForkingMixIn.block_on_close
  bool block_on_close = true;

  /// Reaps finished children (only this server's); with `blocking`, or while max_children or
  /// more run, waits for enough of them to exit. Logs a child killed by a signal.
  /// @python socketserver.ForkingMixIn.collect_children
  void collect_children(bool blocking = false) {
    detail::collect_children(active_children, max_children, blocking);
    children_changed();
  }
  /// Reaps finished children.
  /// @python socketserver.ForkingMixIn.handle_timeout
  void handle_timeout() override { collect_children(); }
  /// Calls Base::service_actions(), then reaps finished children without blocking.
  /// @python socketserver.ForkingMixIn.service_actions
  void service_actions() override {
    Base::service_actions();
    // Reaps without blocking; the max_children limit is kept by at_capacity(), so the loop
    // stays responsive to shutdown() while children run.
    detail::collect_children(active_children, std::numeric_limits<std::size_t>::max(), false);
    children_changed();
  }

  /// Forks; the parent closes its copy of the request, the child handles it and exits with 0
  /// (or 1 after handle_error) without returning.
  /// @throws SocketError when fork() fails (EAGAIN, ENOMEM); the request is then closed.
  /// @python socketserver.ForkingMixIn.process_request
  void process_request(Request& request, const Address& client_address) override {
    if (const pid_t pid = detail::fork_request()) {
      active_children.insert(pid);
      // The client's place under the access policy lasts as long as the child.
      if (Admission admission = request.take_admission()) admissions_[pid] = std::move(admission);
      children_changed();
      this->close_request(request);
      return;
    }
    child_counters_.child_started();
    const auto errors_before = this->stats.handler_errors.load();
    this->run_request(request, client_address);
    child_counters_.child_ending();
    detail::exit_child(this->stats.handler_errors.load() == errors_before ? 0 : 1);
  }

  /// Closes, then (block_on_close) waits for the children up to shutdown_grace, sends SIGTERM
  /// to those left and reaps them.
  /// @python socketserver.ForkingMixIn.server_close
  void server_close() override {
    Base::server_close();
    if (block_on_close) detail::close_children(active_children, this->shutdown_grace);
    children_changed();
  }

 protected:
  /// True while max_children children run (after reaping those that ended).
  bool at_capacity() override {
    if (active_children.size() < max_children) return false;
    detail::collect_children(active_children, std::numeric_limits<std::size_t>::max(), false);
    children_changed();
    return active_children.size() >= max_children;
  }

 private:
  // After children were started or reaped: the admissions of reaped children end (their
  // client's place is free again), and stats.active is the children running (each handles one
  // request; the counter a child moves is its own copy).
  void children_changed() {
    std::erase_if(admissions_,
                  [this](const auto& entry) { return active_children.count(entry.first) == 0; });
    this->stats.active.store(active_children.size(), std::memory_order_relaxed);
  }
  std::map<pid_t, Admission> admissions_;
  detail::ChildCounters child_counters_{this->stats};
};

/// A thread per request on TCP. @python socketserver.ThreadingTCPServer
using ThreadingTCPServer = ThreadingMixIn<TCPServer>;
/// A thread per datagram. @python socketserver.ThreadingUDPServer
using ThreadingUDPServer = ThreadingMixIn<UDPServer>;
/// A thread per connection on a Unix stream socket. @python socketserver.ThreadingUnixStreamServer
using ThreadingUnixStreamServer = ThreadingMixIn<UnixStreamServer>;
/// A thread per datagram on a Unix datagram socket.
/// @python socketserver.ThreadingUnixDatagramServer
using ThreadingUnixDatagramServer = ThreadingMixIn<UnixDatagramServer>;
/// A child process per request on TCP. @python socketserver.ForkingTCPServer
using ForkingTCPServer = ForkingMixIn<TCPServer>;
/// A child process per datagram. @python socketserver.ForkingUDPServer
using ForkingUDPServer = ForkingMixIn<UDPServer>;
/// A child process per connection on a Unix stream socket.
/// @python socketserver.ForkingUnixStreamServer
using ForkingUnixStreamServer = ForkingMixIn<UnixStreamServer>;
/// A child process per datagram on a Unix datagram socket.
/// @python socketserver.ForkingUnixDatagramServer
using ForkingUnixDatagramServer = ForkingMixIn<UnixDatagramServer>;
/// A bounded thread pool on TCP.
using ThreadPoolTCPServer = ThreadPoolMixIn<TCPServer>;
/// A bounded thread pool for datagrams.
using ThreadPoolUDPServer = ThreadPoolMixIn<UDPServer>;
/// A bounded thread pool on a Unix stream socket.
using ThreadPoolUnixStreamServer = ThreadPoolMixIn<UnixStreamServer>;
/// A bounded thread pool on a Unix datagram socket.
using ThreadPoolUnixDatagramServer = ThreadPoolMixIn<UnixDatagramServer>;

}  // namespace sockserv
