// SPDX-License-Identifier: MIT
#include <sockserv/metrics/prometheus.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace sockserv::metrics {
namespace {

std::string format_number(std::uint64_t value) { return std::to_string(value); }

// The shortest text that reads back as `value` ("0.25", "1.7e+09"), as Prometheus' parser takes.
std::string format_number(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc{} ? std::string(buffer, end) : std::string("NaN");
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// A label value as the format quotes it: backslash, double quote and line feed escaped.
std::string escape_label_value(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `{name="value",...}`, or "" for no labels.
std::string label_set(const MetricsLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ',';
    out += name + "=\"" + escape_label_value(value) + '"';
  }
  return out + '}';
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void sample(std::string& out, std::string_view name, const std::string& labels,
            const std::string& value) {
  out.append(name).append(labels).append(" ").append(value).append("\n");
}

// One family with one sample.
template <class Number>
void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            const std::string& labels, Number value) {
  family(out, name, type, help);
  sample(out, name, labels, format_number(value));
}

void counter(std::string& out, std::string_view name, std::string_view help,
             const std::string& labels, std::uint64_t value) {
  metric(out, name, "counter", help, labels, value);
}

// The refusals by reason; the snapshot's loads are relaxed, so "other" is clamped at 0.
void rejected_by_reason(std::string& out, const ServerStatsSnapshot& s, MetricsLabels labels) {
  family(out, "sockserv_rejected_total", "counter",
         "Connections or datagrams refused before the handler ran, by reason.");
  const std::uint64_t known = s.denied + s.limited + s.denied_credentials;
  const std::pair<std::string_view, std::uint64_t> reasons[] = {
      {"denied", s.denied},
      {"limited", s.limited},
      {"denied_credentials", s.denied_credentials},
      {"other", s.rejected > known ? s.rejected - known : 0}};
  labels.emplace_back("reason", "");
  for (const auto& [reason, value] : reasons) {
    labels.back().second = reason;
    sample(out, "sockserv_rejected_total", label_set(labels), format_number(value));
  }
}

// The fields of /proc/self/stat after the command name, which may hold spaces and parentheses:
// fields[0] is the state (field 3 of proc(5)).
std::vector<std::string> proc_self_stat_fields() {
  std::ifstream file("/proc/self/stat");
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(text.substr(close + 1));
  return {std::istream_iterator<std::string>(rest), std::istream_iterator<std::string>()};
}

std::uint64_t boot_time_seconds() {
  std::ifstream file("/proc/stat");
  std::string key;
  std::uint64_t value = 0;
  while (file >> key) {
    if (key == "btime" && file >> value) return value;
    file.ignore(4096, '\n');
  }
  return 0;
}

std::uint64_t open_fd_count() {
  std::error_code ec;
  std::uint64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n > 0 ? n - 1 : 0;  // the directory's own descriptor, open while it is read
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats p;
  const auto fields = proc_self_stat_fields();
  const auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  // proc(5) numbers: utime 14, stime 15, starttime 22, vsize 23, rss 24; fields[0] is number 3.
  if (fields.size() > 21 && ticks > 0) {
    p.cpu_seconds = static_cast<double>(std::stoull(fields[11]) + std::stoull(fields[12])) / ticks;
    p.start_time_seconds = static_cast<double>(boot_time_seconds()) +
                           static_cast<double>(std::stoull(fields[19])) / ticks;
    p.virtual_memory_bytes = std::stoull(fields[20]);
    p.resident_memory_bytes = std::stoull(fields[21]) * page;
  }
  p.open_fds = open_fd_count();
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) p.max_fds = limit.rlim_cur;
  return p;
}

std::string render_server_metrics(const ServerStatsSnapshot& s, const MetricsLabels& labels) {
  for (const auto& label : labels) {
    if (!valid_label_name(label.first) || label.first == "reason" ||
        label.first.starts_with("__")) {
      throw std::invalid_argument("metrics label name '" + label.first + "' is not allowed");
    }
  }
  const std::string l = label_set(labels);
  std::string out;
  counter(out, "sockserv_accepted_total", "Connections (or datagrams) accepted.", l, s.accepted);
  metric(out, "sockserv_active_requests", "gauge", "Requests being handled now.", l, s.active);
  rejected_by_reason(out, s, labels);
  counter(out, "sockserv_timed_out_total", "Requests ended by a timeout.", l, s.timed_out);
  counter(out, "sockserv_handler_errors_total", "Handler exceptions that reached handle_error.", l,
          s.handler_errors);
  counter(out, "sockserv_accept_errors_total", "accept or recvfrom failures (EMFILE, ...).", l,
          s.accept_errors);
  counter(out, "sockserv_peer_resets_total",
          "Requests ended because the peer went away (reset, broken pipe, closed mid-message).", l,
          s.peer_resets);
  counter(out, "sockserv_received_bytes_total",
          "Bytes read from clients through the library's readers (bytes_in).", l, s.bytes_in);
  counter(out, "sockserv_sent_bytes_total",
          "Bytes written to clients through the library's writers (bytes_out).", l, s.bytes_out);
  counter(out, "sockserv_tls_handshakes_total", "TLS handshakes completed.", l, s.tls_handshakes);
  counter(out, "sockserv_tls_failures_total", "TLS handshakes failed or timed out.", l,
          s.tls_failures);
  counter(out, "sockserv_dropped_total", "Datagram replies dropped (send queue full).", l,
          s.dropped);
  return out;
}

std::string render_process_metrics(const ProcessStats& p) {
  std::string out;
  metric(out, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.", "", p.cpu_seconds);
  metric(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "",
         p.resident_memory_bytes);
  metric(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "",
         p.virtual_memory_bytes);
  metric(out, "process_open_fds", "gauge", "Number of open file descriptors.", "", p.open_fds);
  metric(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", "",
         p.max_fds);
  metric(out, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.", "", p.start_time_seconds);
  return out;
}

std::string render_prometheus(const ServerStatsSnapshot& stats, const MetricsLabels& labels) {
  return render_server_metrics(stats, labels) + render_process_metrics(read_process_stats());
}

}  // namespace sockserv::metrics
