// SPDX-License-Identifier: MIT
// `sockserv bench ADDRESS`: a load generator for echo servers (docs/BENCHMARKS.md has results).
//
//   $ sockserv serve --mode async --handler echo --tcp 127.0.0.1:9999 & pid=$!
//   $ sockserv bench 127.0.0.1:9999 --connections 50 --pipeline 16 --server-pid $pid
//
// Modes:
//   ping-pong (default)  every connection keeps --pipeline messages of --size bytes in flight; at
//                        depth 1 it sends one, waits for its whole echo, then sends the next;
//   --bulk               every connection streams --size-byte chunks (16 KiB unless given) in both
//                        directions, writing whenever the socket takes more, with at most
//                        --pipeline chunks (64 unless given) not yet echoed;
//   --hold               opens --connections, each echoes one message, keeps them all open and
//                        idle for --hold-seconds, and reports the server's memory per connection;
//   --handshakes         a new connection per message: --connections clients (4 unless given),
//                        a thread each, each connecting, sending one message, reading its echo
//                        and closing, again and again; reports connections (with --tls: TLS
//                        handshakes) per second and the server's CPU time per connection. With
//                        --resume each connection resumes its client's previous TLS session.
//
// --tls runs every mode over TLS (--cafile FILE or --insecure, --server-name, --alpn, --cert and
// --key as in `sockserv send`). Each connection's handshake is done when it connects, before the
// measured window, except in --handshakes mode, where the handshakes are what is measured.
//
// Every echoed byte is checked against a pattern that depends on the connection and the stream
// offset, so a server that drops, repeats, reorders or crosses bytes between connections fails
// the run. A message's latency runs from the send() that issues it to the recv() that completes
// its echo, and goes into a log-linear histogram (1.6 % resolution), not a list of samples.
//
// The generator (bench_load.cpp) is one epoll loop per --threads over non-blocking
// sockserv::Sockets: at most one send() and one recv() per message and no allocation, so it
// costs less CPU per message than the servers it measures. It does not run on aio::EventLoop on
// purpose: a generator that shared the costs of the thing it measures could hide them.
//
// Server figures (--server-pid): CPU time is that of the process and its descendants, each read
// from its CPU-time clock (clock_getcpuclockid: every thread's, the ended ones included, in
// nanoseconds; children already reaped count through cutime+cstime of /proc/PID/stat), memory is
// VmRSS from /proc/PID/status summed over the same processes.
#include "bench_load.hpp"
#include "bench_tls.hpp"
#include "commands.hpp"
#include "tls_options.hpp"

#include <sockserv/address.hpp>

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockserv::tool {
namespace {

// ---- The server's side, from /proc ------------------------------------------------------------

// CPU time is read per process, in nanoseconds, from its CPU-time clock (clock_getcpuclockid):
// the utime and stime of /proc/PID/stat come in 10 ms units truncated per process, so a forking
// server's fifty children, each busy a few milliseconds, would add up to nothing. The clock
// counts every thread the process ever ran, so a thread-per-connection server's threads that
// start and end between two samples (a connection per message: --handshakes) count in full.
// Children reaped meanwhile count through cutime+cstime. Where the clock cannot be read, the
// process's live threads are summed from /proc/PID/task/TID/schedstat instead.
struct ProcessSample {
  std::map<int, std::uint64_t> process_ns;  // CPU time so far, by process id
  double reaped_seconds = 0;                // cutime + cstime over the tree
  std::uint64_t rss_kib = 0;
  std::size_t processes = 0;  // 0: the process is gone (or no --server-pid)
};

double cpu_seconds_between(const ProcessSample& a, const ProcessSample& b) {
  std::uint64_t ns = 0;
  for (const auto& [pid, t] : b.process_ns) {
    const auto it = a.process_ns.find(pid);
    const std::uint64_t t0 = it == a.process_ns.end() ? 0 : it->second;
    if (t >= t0) ns += t - t0;
  }
  return static_cast<double>(ns) / 1e9 + (b.reaped_seconds - a.reaped_seconds);
}

struct ProcStat {
  int pid = 0;
  int ppid = 0;
  double reaped_seconds = 0;  // cutime + cstime
};

bool read_stat(int pid, ProcStat& out) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(file, text)) return false;
  const auto close = text.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return false;
  long cutime = 0, cstime = 0;
  char state = 0;
  if (std::sscanf(text.c_str() + close + 1,
                  " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %ld %ld", &state, &out.ppid,
                  &cutime, &cstime) != 4) {
    return false;
  }
  out.pid = pid;
  out.reaped_seconds =
      static_cast<double>(cutime + cstime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return true;
}

std::uint64_t read_rss_kib(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(file, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// The CPU time `pid` has used, in nanoseconds: its CPU-time clock, else the sum of its live
// threads' schedstat.
std::uint64_t read_process_ns(int pid) {
  clockid_t clock{};
  timespec ts{};
  if (::clock_getcpuclockid(pid, &clock) == 0 && ::clock_gettime(clock, &ts) == 0) {
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
  }
  std::uint64_t total = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = ::opendir(dir.c_str());
  if (!tasks) return 0;
  while (const dirent* entry = ::readdir(tasks)) {
    if (std::atoi(entry->d_name) <= 0) continue;  // "." and ".."
    std::ifstream file(dir + "/" + entry->d_name + "/schedstat");
    std::uint64_t ns = 0;
    if (file >> ns) total += ns;
  }
  ::closedir(tasks);
  return total;
}

// The process `root` and its live descendants.
ProcessSample sample_process_tree(int root) {
  ProcessSample sample;
  if (root <= 0) return sample;
  std::multimap<int, ProcStat> children;  // by parent
  ProcStat root_stat;
  if (!read_stat(root, root_stat)) return sample;
  if (DIR* dir = ::opendir("/proc")) {
    while (const dirent* entry = ::readdir(dir)) {
      const int pid = std::atoi(entry->d_name);
      ProcStat stat;
      if (pid > 0 && pid != root && read_stat(pid, stat)) children.emplace(stat.ppid, stat);
    }
    ::closedir(dir);
  }
  std::vector<ProcStat> todo{root_stat};
  while (!todo.empty()) {
    const ProcStat p = todo.back();
    todo.pop_back();
    sample.process_ns[p.pid] = read_process_ns(p.pid);
    sample.reaped_seconds += p.reaped_seconds;
    sample.rss_kib += read_rss_kib(p.pid);
    ++sample.processes;
    const auto [first, last] = children.equal_range(p.pid);
    for (auto it = first; it != last; ++it) todo.push_back(it->second);
  }
  return sample;
}

double own_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Ten thousand connections need more descriptors than the usual soft limit of 1024.
void raise_descriptor_limit(std::size_t needed) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < needed) {
    throw std::runtime_error("need " + std::to_string(needed) + " file descriptors, the limit is " +
                             std::to_string(limit.rlim_cur) + " (ulimit -n)");
  }
}

// ---- Running it and reporting -----------------------------------------------------------------

struct Report {
  WorkerResult total;
  double window_seconds = 0;
  double client_cpu_seconds = 0;
  ProcessSample before, after;  // the server, at the window's ends
  double connect_seconds = 0;   // holding
};

std::string describe_time(double ns) {
  if (ns >= 1e6) return fixed(ns / 1e6, 2) + " ms";
  return fixed(ns / 1e3, ns >= 1e5 ? 0 : 1) + " µs";
}

// Waits for the phases of a run, printing the echo rate on stderr once a second.
class Progress {
 public:
  Progress(const BenchOptions& o, Shared& shared, std::size_t workers)
      : options_(o), shared_(shared), workers_(workers) {}

  // Sleeps until `until`, or until every worker has finished or one has failed.
  void wait_until(Clock::time_point until) {
    while (!shared_.failed && shared_.finished < workers_) {
      const auto now = Clock::now();
      if (now >= until) return;
      const auto next_tick = last_tick_ + std::chrono::seconds(1);
      if (now >= next_tick) {
        tick(now);
        continue;
      }
      std::this_thread::sleep_until(
          std::min({until, next_tick, now + std::chrono::milliseconds(10)}));
    }
  }

 private:
  void tick(Clock::time_point now) {
    const auto total = shared_.completed.load(std::memory_order_relaxed);
    const double rate =
        static_cast<double>(total - last_total_) / Seconds(now - last_tick_).count();
    if (!options_.quiet) {
      std::cerr << "bench: " << fixed(Seconds(now - start_).count(), 0) << " s  " << fixed(rate, 0)
                << " msg/s  (" << total << " echoed)" << std::endl;
    }
    last_tick_ = now;
    last_total_ = total;
  }

  const BenchOptions& options_;
  Shared& shared_;
  std::size_t workers_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_tick_ = start_;
  std::uint64_t last_total_ = 0;
};

const char* mode_name(const BenchOptions& o) {
  if (o.handshakes) return o.resume ? "resume" : "handshakes";
  return o.bulk ? "bulk" : "pingpong";
}

void print_load_report(const BenchOptions& o, const Report& r) {
  const auto& lat = r.total.latency;
  const double messages = static_cast<double>(r.total.messages);
  const double rate = messages / r.window_seconds;
  const double mbps = rate * static_cast<double>(o.size) / 1e6;
  const double server_cpu = cpu_seconds_between(r.before, r.after);
  const bool server = r.after.processes > 0;
  const double resumed = static_cast<double>(r.total.resumed) / messages;
  if (o.json) {
    // In --handshakes mode a "message" is a connection: msgs_per_s is connections (handshakes)
    // per second and server_cpu_us_per_msg the server's CPU time per connection.
    std::printf(
        "{\"mode\":\"%s\",\"tls\":%s,\"address\":\"%s\",\"connections\":%zu,\"size\":%zu,"
        "\"pipeline\":%zu,\"threads\":%zu,\"seconds\":%.3f,\"messages\":%.0f,"
        "\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,"
        "\"max_us\":%.2f,\"client_cpu_us_per_msg\":%.4f,\"server_cpu_s\":%s,"
        "\"server_cpu_us_per_msg\":%s,\"server_rss_kib\":%s,\"server_processes\":%zu%s}\n",
        mode_name(o), o.tls ? "true" : "false", o.address.c_str(), o.connections, o.size,
        o.pipeline, o.threads, r.window_seconds, messages, rate, mbps, lat.percentile(0.5) / 1e3,
        lat.percentile(0.99) / 1e3, lat.percentile(0.999) / 1e3, lat.max() / 1e3,
        r.client_cpu_seconds / messages * 1e6, server ? fixed(server_cpu, 3).c_str() : "null",
        server ? fixed(server_cpu / messages * 1e6, 4).c_str() : "null",
        server ? std::to_string(r.after.rss_kib).c_str() : "null", r.after.processes,
        o.handshakes && o.tls ? (",\"resumed_fraction\":" + fixed(resumed, 4)).c_str() : "");
    return;
  }
  const char* unit = o.handshakes ? (o.tls ? "handshake" : "conn") : "msg";
  std::cout << "sockserv bench " << o.address << (o.tls ? " (TLS)" : "") << ": ";
  if (o.handshakes) {
    std::cout << o.connections << " clients, each a connection at a time: connect, "
              << (o.tls ? (o.resume ? "resumed handshake, " : "full handshake, ") : "") << o.size
              << "-byte echo, close; " << fixed(r.window_seconds, 2) << " s\n"
              << "  connections " << r.total.messages << " (" << fixed(rate, 0) << " " << unit
              << "/s)";
    if (o.tls) std::cout << ", " << fixed(resumed * 100, 1) << " % resumed";
    std::cout << "\n";
  } else {
    std::cout << o.connections << " connections, " << o.size << "-byte "
              << (o.bulk ? "chunks streamed" : "messages") << ", pipeline " << o.pipeline << ", "
              << o.threads << " thread(s), " << fixed(r.window_seconds, 2) << " s\n"
              << "  messages    " << r.total.messages << " (" << fixed(rate, 0) << " msg/s)\n"
              << "  throughput  " << fixed(mbps, 2) << " MB/s echoed\n";
  }
  std::cout << "  latency     p50 " << describe_time(lat.percentile(0.5)) << "  p99 "
            << describe_time(lat.percentile(0.99)) << "  p99.9 "
            << describe_time(lat.percentile(0.999)) << "  max " << describe_time(lat.max())
            << (o.handshakes ? " (connect to echo)" : "") << "\n"
            << "  generator   " << fixed(r.client_cpu_seconds / messages * 1e6, 3) << " µs CPU/"
            << unit << " (" << fixed(r.client_cpu_seconds / r.window_seconds * 100, 0)
            << " % of a core)\n";
  if (server) {
    std::cout << "  server      " << fixed(server_cpu / messages * 1e6, 3) << " µs CPU/" << unit
              << " (" << fixed(server_cpu / r.window_seconds * 100, 0) << " % of a core), RSS "
              << fixed(static_cast<double>(r.after.rss_kib) / 1024, 1) << " MiB";
    if (r.after.processes > 1) std::cout << " in " << r.after.processes << " processes";
    std::cout << "\n";
  }
  if (o.resume && r.total.resumed == 0) {
    std::cerr << "sockserv bench: the server resumed no session (are its tickets off?)\n";
  }
}

void print_hold_report(const BenchOptions& o, const Report& r) {
  const bool server = r.after.processes > 0;
  const double delta = static_cast<double>(r.after.rss_kib) - static_cast<double>(r.before.rss_kib);
  const double per_conn = delta / static_cast<double>(o.connections);
  const double cpu = cpu_seconds_between(r.before, r.after);
  if (o.json) {
    std::printf(
        "{\"mode\":\"hold\",\"tls\":%s,\"address\":\"%s\",\"connections\":%zu,\"size\":%zu,"
        "\"connect_s\":%.3f,\"hold_s\":%.3f,\"server_rss_before_kib\":%s,"
        "\"server_rss_held_kib\":%s,\"server_kib_per_conn\":%s,\"server_cpu_us_per_conn\":%s,"
        "\"server_processes\":%zu}\n",
        o.tls ? "true" : "false", o.address.c_str(), o.connections, o.size, r.connect_seconds,
        o.hold_seconds, server ? std::to_string(r.before.rss_kib).c_str() : "null",
        server ? std::to_string(r.after.rss_kib).c_str() : "null",
        server ? fixed(per_conn, 3).c_str() : "null",
        server ? fixed(cpu / static_cast<double>(o.connections) * 1e6, 2).c_str() : "null",
        r.after.processes);
    return;
  }
  std::cout << "sockserv bench " << o.address << (o.tls ? " (TLS)" : "") << ": held "
            << o.connections << " connections for " << fixed(o.hold_seconds, 1) << " s\n"
            << "  connected   " << o.connections << " in " << fixed(r.connect_seconds, 2)
            << " s, each echoed " << o.size << " bytes\n";
  if (server) {
    std::cout << "  server RSS  " << fixed(static_cast<double>(r.before.rss_kib) / 1024, 1)
              << " MiB before, " << fixed(static_cast<double>(r.after.rss_kib) / 1024, 1)
              << " MiB held: " << fixed(per_conn, 2) << " KiB per connection\n"
              << "  server CPU  " << fixed(cpu / static_cast<double>(o.connections) * 1e6, 1)
              << " µs per connection (accept, echo)\n";
  }
}

int run_bench(BenchOptions o) {
  raise_descriptor_limit(o.connections + 64);
  const Address address = Address::lookup(o.address, SOCK_STREAM);
  // --handshakes: a thread per client, each with one connection at a time.
  const std::size_t nthreads = o.handshakes ? o.connections : std::min(o.threads, o.connections);
  Shared shared(static_cast<std::ptrdiff_t>(nthreads));
  std::vector<std::vector<std::size_t>> ids(nthreads);  // connection i goes to thread i % n
  for (std::size_t i = 0; i < o.connections; ++i) ids[i % nthreads].push_back(i);
  std::vector<WorkerResult> results(nthreads);
  Report r;
  if (o.hold) r.before = sample_process_tree(o.server_pid);
  Progress progress(o, shared, nthreads);
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] {
      results[t] = o.handshakes ? run_handshake_worker(o, address, shared, t)
                                : run_worker(o, address, shared, ids[t]);
    });
  }
  shared.ready.wait();
  r.connect_seconds = Seconds(Clock::now() - start).count();
  shared.window_start = Clock::now() + to_duration(o.hold ? 0.0 : o.warmup);
  shared.window_end = o.hold ? shared.window_start : shared.window_start + to_duration(o.duration);
  shared.go = true;
  shared.go.notify_all();
  if (o.hold && !shared.failed) {
    progress.wait_until(Clock::now() + to_duration(o.hold_seconds));
    r.after = sample_process_tree(o.server_pid);
  } else if (!shared.failed) {
    progress.wait_until(shared.window_start);
    r.before = sample_process_tree(o.server_pid);
    const double cpu0 = own_cpu_seconds();
    progress.wait_until(shared.window_end);
    r.after = sample_process_tree(o.server_pid);
    r.client_cpu_seconds = own_cpu_seconds() - cpu0;
  }
  shared.release = true;
  shared.release.notify_all();
  for (auto& t : threads) t.join();
  if (shared.failed) throw std::runtime_error(shared.error);
  for (const auto& result : results) {
    r.total.latency.merge(result.latency);
    r.total.messages += result.messages;
    r.total.resumed += result.resumed;
    r.total.last = std::max(r.total.last, result.last);
  }
  if (o.hold) {
    print_hold_report(o, r);
    return 0;
  }
  const auto end = std::min(shared.window_end, std::max(r.total.last, shared.window_start));
  r.window_seconds = std::max(Seconds(end - shared.window_start).count(), 1e-9);
  if (r.total.messages == 0) throw std::runtime_error("no message was echoed within the window");
  print_load_report(o, r);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_status) {
  auto o = std::make_shared<BenchOptions>();
  auto tls = std::make_shared<ClientTlsOptions>();
  auto* cmd = app.add_subcommand("bench",
                                 "Load an echo server and report its throughput, latency, "
                                 "CPU time and memory");
  cmd->add_option("address", o->address, "Echo server: HOST:PORT, [IPv6]:PORT or unix:/path")
      ->required();
  auto* connections =
      cmd->add_option("-c,--connections", o->connections,
                      "Concurrent connections (with --handshakes: clients, default 4 then)")
          ->default_val(50)
          ->check(CLI::Range(1, 1000000));
  auto* size = cmd->add_option("-s,--size", o->size,
                               "Bytes per message (per chunk with --bulk; default 16384 then)")
                   ->default_val(64)
                   ->check(CLI::Range(1, 16 << 20));
  auto* pipeline =
      cmd->add_option("-p,--pipeline", o->pipeline,
                      "Messages in flight per connection (chunks with --bulk; default 64 then)")
          ->default_val(1)
          ->check(CLI::Range(1, 65536));
  auto* bulk =
      cmd->add_flag("--bulk", o->bulk, "Stream chunks in both directions instead of ping-pong");
  auto* duration =
      cmd->add_option("-d,--duration", o->duration,
                      "Seconds to measure (default 5; 60 at most when --messages is given)")
          ->default_val(5.0)
          ->check(CLI::PositiveNumber);
  cmd->add_option("-n,--messages", o->messages, "Stop after this many messages in all");
  cmd->add_option("--warmup", o->warmup, "Seconds of load before measuring")
      ->default_val(0.0)
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--server-pid", o->server_pid,
                  "The server's process: report its CPU time per message and its memory");
  auto* hold = cmd->add_flag(
      "--hold", o->hold,
      "Open the connections, echo once on each, hold them idle, report server memory");
  cmd->add_option("--hold-seconds", o->hold_seconds, "How long --hold keeps them open")
      ->default_val(5.0)
      ->check(CLI::NonNegativeNumber);
  auto* threads =
      cmd->add_option("-t,--threads", o->threads, "Generator threads (one epoll loop each)")
          ->default_val(1)
          ->check(CLI::Range(1, 256));
  auto* handshakes =
      cmd->add_flag("--handshakes", o->handshakes,
                    "A new connection per message: connect (TLS handshake), echo once, close; "
                    "reports connections per second and server CPU per connection")
          ->excludes(bulk)
          ->excludes(hold)
          ->excludes(pipeline)
          ->excludes(threads);
  cmd->add_flag("--resume", o->resume,
                "With --handshakes --tls: resume the session of the client's previous connection")
      ->needs(handshakes);
  cmd->add_option("--connect-timeout", o->connect_timeout,
                  "Give up when no connection completes for this many seconds")
      ->default_val(10.0)
      ->check(CLI::PositiveNumber);
  cmd->add_option("--connect-concurrency", o->connect_concurrency,
                  "Connections set up (connect + first echo) at once; more can overflow a small "
                  "listen backlog")
      ->default_val(4)
      ->check(CLI::Range(1, 4096));
  cmd->add_flag("--json", o->json, "Print one JSON line instead of the report");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress lines on stderr");
  add_client_tls_options(*cmd, *tls);
  cmd->callback([o, tls, size, pipeline, duration, connections, &exit_status] {
    BenchOptions options = *o;
    if (options.bulk && size->count() == 0) options.size = 16384;
    if (options.bulk && pipeline->count() == 0) options.pipeline = 64;
    if (options.messages > 0 && duration->count() == 0) options.duration = 60.0;
    if (options.handshakes && connections->count() == 0) options.connections = 4;
    try {
      if (options.handshakes && options.connections > 256) {
        throw std::invalid_argument("--handshakes runs a thread per client: 256 at most");
      }
      if (!tls->tls && (!tls->cafile.empty() || !tls->server_name.empty() || !tls->alpn.empty() ||
                        !tls->cert.empty() || tls->insecure)) {
        throw std::invalid_argument(
            "--cafile, --server-name, --alpn, --cert and --insecure "
            "need --tls");
      }
      if (options.resume && !tls->tls) throw std::invalid_argument("--resume needs --tls");
      if (tls->tls) {
        auto context = build_client_context(*tls);
        enable_read_ahead(context);
        options.tls = std::make_shared<const SSLContext>(std::move(context));
        options.server_name = client_server_name(*tls, options.address);
      }
      exit_status = run_bench(std::move(options));
    } catch (const std::exception& e) {
      std::cerr << "sockserv bench: " << e.what() << std::endl;
      exit_status = 1;
    }
  });
}

}  // namespace sockserv::tool
