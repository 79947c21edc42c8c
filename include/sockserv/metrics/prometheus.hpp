// SPDX-License-Identifier: MIT
/// @file
/// A server's counters and the process's figures in Prometheus' text exposition format 0.0.4,
/// for `sockserv serve --metrics` and for programs that serve them their own way (an HTTP handler
/// of their own, a file for node_exporter's textfile collector, a push gateway).
///
/// ```
///   std::string body = sockserv::metrics::render_prometheus(server.stats.snapshot());
///   // reply "200 OK", "Content-Type: " + std::string(sockserv::metrics::content_type), body
/// ```
///
/// Every function here is thread-safe: they read their arguments and /proc/self only.
/// docs/OPERATIONS.md "Metrics" lists every metric, its type and meaning.
#pragma once

#include <sockserv/stats.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// Prometheus exposition of a server's counters and the process's figures.
namespace sockserv::metrics {

/// The Content-Type of the format the functions below write.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Labels added to every `sockserv_` sample, e.g. `{{"server", "echo"}}`: name, value. Names must
/// be valid Prometheus label names (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, not
/// "reason", which rejected uses); values are escaped.
using MetricsLabels = std::vector<std::pair<std::string, std::string>>;

/// The standard process metrics of Prometheus' client libraries (their `process_` families).
struct ProcessStats {
  double cpu_seconds = 0;                   ///< User + system CPU time.
  std::uint64_t resident_memory_bytes = 0;  ///< Resident set size.
  std::uint64_t virtual_memory_bytes = 0;   ///< Virtual memory size.
  std::uint64_t open_fds = 0;               ///< Descriptors open now.
  std::uint64_t max_fds = 0;                ///< RLIMIT_NOFILE's soft limit.
  double start_time_seconds = 0;            ///< Process start, since the Unix epoch.
};

/// Reads /proc/self/stat, /proc/stat (boot time), /proc/self/fd and RLIMIT_NOFILE. A figure that
/// cannot be read stays 0. Linux only.
ProcessStats read_process_stats();

/// The `sockserv_` families of one snapshot: a `# HELP` and a `# TYPE` line per family, then its
/// samples. rejected is split by a `reason` label (denied, limited, denied_credentials, other).
/// @throws std::invalid_argument when a label name is not allowed (see MetricsLabels).
std::string render_server_metrics(const ServerStatsSnapshot& stats,
                                  const MetricsLabels& labels = {});

/// The `process_` families (process_cpu_seconds_total, process_resident_memory_bytes, ...).
std::string render_process_metrics(const ProcessStats& process);

/// Both: the server's counters, then the process's figures read now.
/// @throws std::invalid_argument as render_server_metrics().
std::string render_prometheus(const ServerStatsSnapshot& stats, const MetricsLabels& labels = {});

}  // namespace sockserv::metrics
