// SPDX-License-Identifier: MIT
// One generator thread of `sockserv bench`: an epoll loop (level-triggered) over its share of
// the connections, which are non-blocking sockserv::Sockets. Per message it makes at most one
// send() and one recv(), one clock reading, and no allocation.
//
// Message m of a connection is the stream's bytes [m*size, (m+1)*size). Connection c carries at
// stream offset o the byte pattern[(o + 61c) mod 251], so what comes back is checked with one
// memcmp() against the pattern and what goes out is sent straight from it: every message is
// issued by advancing a byte count, never by building a buffer.
//
// Over TLS (--tls) each connection's handshake is done blocking when it connects
// (bench_tls.cpp), then the socket is non-blocking like the others and its bytes go through
// Socket::send/recv_into, which encrypt and decrypt; EAGAIN means OpenSSL needs the socket.
// Two things differ from plain sockets. A TLS recv() returns one record at most, and OpenSSL may
// already hold the next ones (the generator's context reads ahead: one recv(2) takes every record
// the socket has), which epoll cannot report: a readable connection is read until it would block
// (16 reads at most while OpenSSL holds nothing more; the level-triggered loop comes back for
// what the kernel still has). And a TLS send() takes one record at a time, so a short count is
// not a full socket: only EAGAIN is.
#include "bench_load.hpp"
#include "bench_tls.hpp"

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>

namespace sockserv::tool {

std::chrono::nanoseconds to_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Seconds(seconds));
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

namespace {

constexpr std::size_t pattern_period = 251;  // prime: never in step with a message size
constexpr std::size_t max_io = 256 * 1024;   // the largest single send() or recv()

class Pattern {
 public:
  Pattern() : bytes_(pattern_period + max_io) {
    // 7 is odd, so the 251 values of 7i+3 mod 256 are distinct.
    for (std::size_t i = 0; i < bytes_.size(); ++i)
      bytes_[i] = static_cast<char>((i % pattern_period) * 7 + 3);
  }
  // Connection `conn`'s bytes from stream offset `offset` on; max_io of them are contiguous.
  const char* at(std::size_t conn, std::uint64_t offset) const noexcept {
    return bytes_.data() + (offset + conn * 61) % pattern_period;
  }

 private:
  std::vector<char> bytes_;
};

// One client connection.
struct Peer {
  Socket sock;
  const SSLObject* tls = nullptr;  // the TLS state of `sock`, or null
  std::size_t id = 0;
  std::uint64_t quota = 0;  // messages it may issue in all
  std::uint64_t issued = 0;
  std::uint64_t completed = 0;
  std::uint64_t sent = 0;                    // bytes the kernel has taken
  std::uint64_t received = 0;                // bytes echoed and checked
  std::vector<Clock::time_point> issued_at;  // ring: when each message in flight was issued
  bool connecting = false;
  bool writing = false;  // EPOLLOUT is registered: a send() was cut short
};

class Worker {
 public:
  Worker(const BenchOptions& options, const Address& address, const Pattern& pattern,
         Shared& shared, std::vector<std::size_t> ids);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { ::close(epfd_); }

  // The thread's body: connect, wait for the start, run (or hold), close.
  void run() noexcept;
  WorkerResult result;

 private:
  void connect_all();
  bool start_connect(Peer& p);
  void on_connected(Peer& p);
  void run_load();
  void poll(int timeout_ms);
  void on_readable(Peer& p);
  bool receive(Peer& p);
  void issue(Peer& p, Clock::time_point now);
  void flush(Peer& p);
  void watch(Peer& p, int op, std::uint32_t events);
  void fail(const std::string& message);

  const BenchOptions& options_;
  const Address& address_;
  const Pattern& pattern_;
  Shared& shared_;
  std::vector<Peer> peers_;  // never resized: epoll holds pointers into it
  std::vector<char> buffer_ = std::vector<char>(max_io);
  std::array<epoll_event, 256> events_{};
  int epfd_;
  std::size_t depth_;
  std::size_t size_;
  Clock::time_point stop_issuing_ = Clock::time_point::max();
  Clock::time_point last_progress_{};
  std::uint64_t outstanding_ = 0;  // issued but not completed, all peers
  std::size_t exhausted_ = 0;      // peers that have issued their quota
  std::size_t ready_ = 0;          // peers set up: connected, one message echoed
  bool setting_up_ = true;         // connect_all() is running
  std::uint64_t echoed_ = 0;       // messages completed, all peers, whole run
  std::uint64_t unreported_ = 0;   // completions not yet added to shared_.completed
  bool failed_ = false;
};

Worker::Worker(const BenchOptions& options, const Address& address, const Pattern& pattern,
               Shared& shared, std::vector<std::size_t> ids)
    : options_(options),
      address_(address),
      pattern_(pattern),
      shared_(shared),
      peers_(ids.size()),
      epfd_(::epoll_create1(EPOLL_CLOEXEC)),
      depth_(options.pipeline),
      size_(options.size) {
  if (epfd_ < 0) throw_errno("epoll_create1");
  // Each connection echoes one message while it is set up, then its share of --messages.
  const std::size_t n = options.connections;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    Peer& p = peers_[i];
    p.id = ids[i];
    p.issued_at.resize(depth_);
    if (options.hold) {
      p.quota = 1;
    } else if (options.messages > 0) {
      p.quota = 1 + options.messages / n + (p.id < options.messages % n ? 1 : 0);
    } else {
      p.quota = std::numeric_limits<std::uint64_t>::max();
    }
  }
}

void Worker::fail(const std::string& message) {
  failed_ = true;
  shared_.fail(message);
}

void Worker::watch(Peer& p, int op, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &p;
  if (::epoll_ctl(epfd_, op, p.sock.fileno(), &ev) != 0)
    fail(std::string("epoll_ctl: ") + std::strerror(errno));
}

void Worker::run() noexcept {
  try {
    connect_all();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  shared_.ready.count_down();
  shared_.go.wait(false);
  if (!options_.hold) {
    if (!failed_ && !shared_.failed) run_load();
    ++shared_.finished;  // drained: the main thread takes its last sample of the server now
  }
  // The connections stay open until that sample is taken: a server thread that ended with its
  // connection before it would take its CPU time with it.
  shared_.release.wait(false);
  if (options_.hold && !failed_ && !shared_.failed) poll(0);  // did the server drop any?
  // A TLS connection ends with close_notify (one attempt, no wait), which a server would
  // otherwise log as a truncation.
  for (auto& p : peers_) {
    if (p.tls == nullptr) continue;
    try {
      p.sock.shutdown(SHUT_WR);
    } catch (const std::exception&) {  // the server has gone already: nothing to say
    }
  }
  peers_.clear();  // close every connection (epoll forgets them with their descriptors)
}

// Sets every peer up: connect, then echo one message. Only that echo proves the server has
// accepted the connection (the kernel completes handshakes on its own, up to the listen backlog),
// so at most --connect-concurrency peers are set up at once: a server with Python's backlog of 5
// never sees its accept queue overflow, which would stall a connection for a SYN retransmission.
// Fails when no peer completes for --connect-timeout.
void Worker::connect_all() {
  std::vector<Peer*> waiting;
  for (auto it = peers_.rbegin(); it != peers_.rend(); ++it) waiting.push_back(&*it);
  std::size_t started = 0;
  last_progress_ = Clock::now();
  while (!failed_ && !shared_.failed && ready_ < peers_.size()) {
    while (!waiting.empty() && started - ready_ < options_.connect_concurrency) {
      if (!start_connect(*waiting.back())) break;  // a Unix listener's queue is full: wait
      waiting.pop_back();
      ++started;
    }
    if (Clock::now() - last_progress_ > to_duration(options_.connect_timeout)) {
      fail("cannot connect to " + address_.to_string() + ": no progress in " +
           fixed(options_.connect_timeout, 1) + " s (" + std::to_string(ready_) + " of " +
           std::to_string(peers_.size()) + " connections set up)");
    }
    poll(10);
  }
  setting_up_ = false;
}

bool Worker::start_connect(Peer& p) {
  if (options_.tls) {
    // Connect and handshake, blocking (each under --connect-timeout); the echo is the loop's.
    try {
      p.sock = connect_client(options_, address_);
    } catch (const std::exception& e) {
      fail("connection " + std::to_string(p.id) + ": " + e.what());
      return true;
    }
    p.sock.setblocking(false);
    p.tls = ssl_object(p.sock);
    watch(p, EPOLL_CTL_ADD, EPOLLIN);
    on_connected(p);
    return true;
  }
  p.sock = Socket(address_.family(), SOCK_STREAM);
  p.sock.setblocking(false);
  const int err = p.sock.connect_ex(address_);
  if (err == EAGAIN) return false;
  if (err != 0 && err != EINPROGRESS) {
    fail("cannot connect to " + address_.to_string() + ": " + std::strerror(err));
    return true;
  }
  p.connecting = err != 0;
  watch(p, EPOLL_CTL_ADD, p.connecting ? EPOLLOUT : EPOLLIN);
  if (!p.connecting) on_connected(p);
  return true;
}

void Worker::on_connected(Peer& p) {
  if (p.connecting) {
    if (const auto ec = p.sock.get_error()) {
      fail("cannot connect to " + address_.to_string() + ": " + ec.message());
      return;
    }
    p.connecting = false;
    watch(p, EPOLL_CTL_MOD, EPOLLIN);
  }
  // Small pipelined messages must leave at once, not wait for the previous ones' ACKs.
  if (address_.is_inet()) p.sock.set_nodelay(true);
  issue(p, Clock::now());
}

void Worker::run_load() {
  stop_issuing_ = shared_.window_end;
  const auto start = Clock::now();
  for (auto& p : peers_) issue(p, start);
  const auto drain_limit = std::chrono::seconds(10);
  while (!failed_ && !shared_.failed) {
    const auto now = Clock::now();
    if (outstanding_ == 0 && (now >= stop_issuing_ || exhausted_ == peers_.size())) break;
    if (now >= stop_issuing_ + drain_limit) {
      fail("the server did not echo " + std::to_string(outstanding_) + " messages within 10 s");
      break;
    }
    poll(50);
  }
}

// One epoll_wait() and the work it reports.
void Worker::poll(int timeout_ms) {
  const int n = ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
  if (n < 0 && errno != EINTR) fail(std::string("epoll_wait: ") + std::strerror(errno));
  for (int i = 0; i < n && !failed_; ++i) {
    const auto& ev = events_[static_cast<std::size_t>(i)];
    Peer& p = *static_cast<Peer*>(ev.data.ptr);
    if (p.connecting) {
      on_connected(p);
      continue;
    }
    if (ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(p);
    if (!failed_ && p.writing && (ev.events & EPOLLOUT)) flush(p);
  }
  if (unreported_ > 0) {
    shared_.completed.fetch_add(unreported_, std::memory_order_relaxed);
    unreported_ = 0;
  }
}

// One recv() on a plain connection. Over TLS, reads until the connection would block: OpenSSL
// may hold records epoll knows nothing of (16 reads at most while it holds none).
void Worker::on_readable(Peer& p) {
  for (int reads = 1; receive(p) && p.tls != nullptr && !failed_; ++reads) {
    if (reads >= 16 && p.tls->pending() == 0) return;
  }
}

// Receives what the server echoed, checks it, completes messages and issues the next ones.
// False when nothing was received (the socket would block, or the run failed).
bool Worker::receive(Peer& p) {
  std::error_code ec;
  const std::size_t n = p.sock.recv_into(std::span<char>(buffer_), ec);
  if (ec == std::errc::resource_unavailable_try_again) return false;
  const auto which = [&p] { return " (connection " + std::to_string(p.id) + ")"; };
  const auto failed = [this](const std::string& message) {
    fail(message);
    return false;
  };
  if (ec) return failed("recv: " + ec.message() + which());
  if (n == 0) return failed("the server closed the connection" + which());
  if (n > p.sent - p.received) return failed("the server sent bytes it was never sent" + which());
  const char* expected = pattern_.at(p.id, p.received);
  if (std::memcmp(buffer_.data(), expected, n) != 0) {
    const auto bad = static_cast<std::size_t>(
        std::mismatch(buffer_.data(), buffer_.data() + n, expected).first - buffer_.data());
    return failed("echoed byte " + std::to_string(p.received + bad) + " is wrong" + which());
  }
  p.received += n;
  const auto now = Clock::now();
  const bool counted = now >= shared_.window_start && now < shared_.window_end;
  while (p.completed < p.issued && p.received >= (p.completed + 1) * size_) {
    const auto took = now - p.issued_at[p.completed % depth_];
    if (counted) {
      result.latency.record(static_cast<std::uint64_t>(took.count()));
      ++result.messages;
    }
    if (++p.completed == 1) {
      ++ready_;
      last_progress_ = now;
    }
    --outstanding_;
    ++echoed_;
    ++unreported_;
    result.last = now;
  }
  issue(p, now);
  return true;
}

// Issues messages until `depth_` are in flight (none after the window), then sends them.
void Worker::issue(Peer& p, Clock::time_point now) {
  const std::uint64_t limit = setting_up_ ? 1 : p.quota;
  while (p.issued - p.completed < depth_ && p.issued < limit && now < stop_issuing_) {
    p.issued_at[p.issued % depth_] = now;
    ++p.issued;
    ++outstanding_;
    if (p.issued == p.quota) ++exhausted_;
  }
  flush(p);
}

// Sends what is issued and not yet sent. A short count means the socket's buffer is full (over
// TLS only EAGAIN does: a TLS send() takes one record): wait for EPOLLOUT (registered only then,
// so the loop is not woken for writability it has no use for).
void Worker::flush(Peer& p) {
  const std::uint64_t target = p.issued * size_;
  while (p.sent < target) {
    const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(target - p.sent, max_io));
    std::error_code ec;
    const std::size_t n = p.sock.send({pattern_.at(p.id, p.sent), len}, ec);
    if (ec && ec != std::errc::resource_unavailable_try_again) {
      return fail("send: " + ec.message() + " (connection " + std::to_string(p.id) + ")");
    }
    p.sent += n;
    if (ec || (n < len && p.tls == nullptr)) break;
  }
  const bool blocked = p.sent < target;
  if (blocked != p.writing) {
    p.writing = blocked;
    watch(p, EPOLL_CTL_MOD, blocked ? EPOLLIN | EPOLLOUT : EPOLLIN);
  }
}

}  // namespace

WorkerResult run_worker(const BenchOptions& options, const Address& address, Shared& shared,
                        const std::vector<std::size_t>& ids) noexcept {
  static const Pattern pattern;
  try {
    Worker worker(options, address, pattern, shared, ids);
    worker.run();
    return std::move(worker.result);
  } catch (const std::exception& e) {  // epoll_create1 failed: nothing is connected yet
    shared.fail(e.what());
    shared.ready.count_down();
    return {};
  }
}

}  // namespace sockserv::tool
