// SPDX-License-Identifier: MIT
// The load engine of `sockserv bench` (bench_command.cpp has the command, the reports and the
// description of what is measured): the options, the latency histogram, what the generator
// threads share, and the body of one generator thread (bench_load.cpp; the TLS connect and the
// --handshakes loop are in bench_tls.cpp).
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/tls/ssl_context.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sockserv::tool {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// Seconds as a duration, and as text with `decimals` digits after the point (shared by the
// generator and its report).
std::chrono::nanoseconds to_duration(double seconds);
std::string fixed(double value, int decimals);

struct BenchOptions {
  std::string address;
  std::size_t connections = 50;
  std::size_t size = 64;
  std::size_t pipeline = 1;
  bool bulk = false;
  double duration = 5.0;
  std::uint64_t messages = 0;  // 0: no limit
  double warmup = 0.0;
  int server_pid = 0;
  bool hold = false;
  double hold_seconds = 5.0;
  std::size_t threads = 1;
  double connect_timeout = 10.0;
  std::size_t connect_concurrency = 4;
  bool json = false;
  bool quiet = false;
  // --tls: the client context (null: plain TCP) and the name sent as SNI and verified.
  std::shared_ptr<const SSLContext> tls;
  std::string server_name;
  // --handshakes: a new connection per message, --connections of them at once (a thread each);
  // --resume: each resumes the session of its thread's previous connection.
  bool handshakes = false;
  bool resume = false;
};

// Nanosecond samples, log-linear: exact below 64, then 64 buckets per power of two.
class Histogram {
 public:
  void record(std::uint64_t ns) noexcept {
    ++counts_[index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
  }
  void merge(const Histogram& other) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }
  std::uint64_t total() const noexcept { return total_; }
  double max() const noexcept { return static_cast<double>(max_); }
  // The sample at rank ceil(q * total), as its bucket's midpoint.
  double percentile(double q) const noexcept {
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(midpoint(i), max());
    }
    return max();
  }

 private:
  static constexpr unsigned sub_bits = 6;
  static constexpr std::size_t sub = std::size_t{1} << sub_bits;
  static std::size_t index(std::uint64_t v) noexcept {
    if (v < sub) return v;
    const auto shift = static_cast<std::size_t>(std::bit_width(v)) - 1 - sub_bits;
    return (shift + 1) * sub + static_cast<std::size_t>(v >> shift) - sub;
  }
  static double midpoint(std::size_t i) noexcept {
    if (i < sub) return static_cast<double>(i);
    const std::size_t shift = i / sub - 1;
    const auto low = static_cast<double>(std::uint64_t{sub + i % sub} << shift);
    return low + static_cast<double>(std::uint64_t{1} << shift) / 2;
  }

  std::array<std::uint64_t, sub*(64 - sub_bits + 1)> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

// What the threads share. The main thread writes the window before it sets `go`.
struct Shared {
  explicit Shared(std::ptrdiff_t workers) : ready(workers) {}
  std::latch ready;  // every worker has connected (and, holding, echoed)
  std::atomic<bool> go{false};
  std::atomic<bool> release{false};  // holding: close the connections now
  std::atomic<bool> failed{false};
  std::atomic<std::uint64_t> completed{0};  // every echoed message, for the progress line
  std::atomic<std::size_t> finished{0};     // workers that have drained their connections
  Clock::time_point window_start{};
  Clock::time_point window_end{};
  std::mutex mutex;
  std::string error;

  void fail(std::string message) {
    std::lock_guard lock(mutex);
    if (error.empty()) error = std::move(message);
    failed = true;
  }
};

struct WorkerResult {
  Histogram latency;
  std::uint64_t messages = 0;  // completed inside the window
  std::uint64_t resumed = 0;   // --handshakes: of `messages`, connections that resumed a session
  Clock::time_point last{};    // when the last message completed
};

// The body of one generator thread: sets up the connections numbered `ids` (connect, one echo
// each), counts down shared.ready, waits for shared.go, then loads them until the window ends
// (or holds them until shared.release), and closes them. Errors go to shared.fail(); never throws.
WorkerResult run_worker(const BenchOptions& options, const Address& address, Shared& shared,
                        const std::vector<std::size_t>& ids) noexcept;

}  // namespace sockserv::tool
