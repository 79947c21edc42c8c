// SPDX-License-Identifier: MIT
// The Prometheus rendering (include/sockserv/metrics/prometheus.hpp): a known snapshot gives
// exactly the expected lines; labels are checked and escaped; the process figures are read.
#include <sockserv/metrics/prometheus.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <stdexcept>
#include <string>

namespace sockserv::metrics {
namespace {

ServerStatsSnapshot known_snapshot() {
  ServerStatsSnapshot s;
  s.accepted = 12;
  s.active = 3;
  s.rejected = 10;
  s.timed_out = 4;
  s.bytes_in = 1000;
  s.bytes_out = 2000;
  s.handler_errors = 5;
  s.accept_errors = 6;
  s.tls_handshakes = 7;
  s.tls_failures = 8;
  s.dropped = 9;
  s.denied = 2;
  s.limited = 3;
  s.peer_resets = 11;
  s.denied_credentials = 1;
  return s;
}

TEST(MetricsPrometheus, AKnownSnapshotGivesExactlyTheseLines) {
  const std::string expected =
      "# HELP sockserv_accepted_total Connections (or datagrams) accepted.\n"
      "# TYPE sockserv_accepted_total counter\n"
      "sockserv_accepted_total{server=\"a\\\"b\\\\c\\nd\"} 12\n"
      "# HELP sockserv_active_requests Requests being handled now.\n"
      "# TYPE sockserv_active_requests gauge\n"
      "sockserv_active_requests{server=\"a\\\"b\\\\c\\nd\"} 3\n"
      "# HELP sockserv_rejected_total Connections or datagrams refused before the handler ran, "
      "by reason.\n"
      "# TYPE sockserv_rejected_total counter\n"
      "sockserv_rejected_total{server=\"a\\\"b\\\\c\\nd\",reason=\"denied\"} 2\n"
      "sockserv_rejected_total{server=\"a\\\"b\\\\c\\nd\",reason=\"limited\"} 3\n"
      "sockserv_rejected_total{server=\"a\\\"b\\\\c\\nd\",reason=\"denied_credentials\"} 1\n"
      "sockserv_rejected_total{server=\"a\\\"b\\\\c\\nd\",reason=\"other\"} 4\n"
      "# HELP sockserv_timed_out_total Requests ended by a timeout.\n"
      "# TYPE sockserv_timed_out_total counter\n"
      "sockserv_timed_out_total{server=\"a\\\"b\\\\c\\nd\"} 4\n"
      "# HELP sockserv_handler_errors_total Handler exceptions that reached handle_error.\n"
      "# TYPE sockserv_handler_errors_total counter\n"
      "sockserv_handler_errors_total{server=\"a\\\"b\\\\c\\nd\"} 5\n"
      "# HELP sockserv_accept_errors_total accept or recvfrom failures (EMFILE, ...).\n"
      "# TYPE sockserv_accept_errors_total counter\n"
      "sockserv_accept_errors_total{server=\"a\\\"b\\\\c\\nd\"} 6\n"
      "# HELP sockserv_peer_resets_total Requests ended because the peer went away (reset, "
      "broken pipe, closed mid-message).\n"
      "# TYPE sockserv_peer_resets_total counter\n"
      "sockserv_peer_resets_total{server=\"a\\\"b\\\\c\\nd\"} 11\n"
      "# HELP sockserv_received_bytes_total Bytes read from clients through the library's "
      "readers (bytes_in).\n"
      "# TYPE sockserv_received_bytes_total counter\n"
      "sockserv_received_bytes_total{server=\"a\\\"b\\\\c\\nd\"} 1000\n"
      "# HELP sockserv_sent_bytes_total Bytes written to clients through the library's "
      "writers (bytes_out).\n"
      "# TYPE sockserv_sent_bytes_total counter\n"
      "sockserv_sent_bytes_total{server=\"a\\\"b\\\\c\\nd\"} 2000\n"
      "# HELP sockserv_tls_handshakes_total TLS handshakes completed.\n"
      "# TYPE sockserv_tls_handshakes_total counter\n"
      "sockserv_tls_handshakes_total{server=\"a\\\"b\\\\c\\nd\"} 7\n"
      "# HELP sockserv_tls_failures_total TLS handshakes failed or timed out.\n"
      "# TYPE sockserv_tls_failures_total counter\n"
      "sockserv_tls_failures_total{server=\"a\\\"b\\\\c\\nd\"} 8\n"
      "# HELP sockserv_dropped_total Datagram replies dropped (send queue full).\n"
      "# TYPE sockserv_dropped_total counter\n"
      "sockserv_dropped_total{server=\"a\\\"b\\\\c\\nd\"} 9\n";
  EXPECT_EQ(render_server_metrics(known_snapshot(), {{"server", "a\"b\\c\nd"}}), expected);
}

TEST(MetricsPrometheus, WithoutLabelsOnlyTheReasonLabelRemains) {
  const std::string text = render_server_metrics(known_snapshot());
  EXPECT_NE(text.find("\nsockserv_accepted_total 12\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nsockserv_rejected_total{reason=\"other\"} 4\n"), std::string::npos)
      << text;
}

TEST(MetricsPrometheus, OtherIsNeverNegativeWhenTheReasonsRaceAhead) {
  ServerStatsSnapshot s;
  s.rejected = 1;  // relaxed loads: the reason counted, the total not yet
  s.denied = 2;
  const std::string text = render_server_metrics(s);
  EXPECT_NE(text.find("sockserv_rejected_total{reason=\"other\"} 0\n"), std::string::npos) << text;
}

TEST(MetricsPrometheus, BadLabelNamesAreRefused) {
  const ServerStatsSnapshot s;
  EXPECT_THROW(render_server_metrics(s, {{"reason", "x"}}), std::invalid_argument);
  EXPECT_THROW(render_server_metrics(s, {{"1st", "x"}}), std::invalid_argument);
  EXPECT_THROW(render_server_metrics(s, {{"a-b", "x"}}), std::invalid_argument);
  EXPECT_THROW(render_server_metrics(s, {{"__name__", "x"}}), std::invalid_argument);
  EXPECT_THROW(render_server_metrics(s, {{"", "x"}}), std::invalid_argument);
  EXPECT_NO_THROW(render_server_metrics(s, {{"_ok9", "x"}}));
}

TEST(MetricsPrometheus, ProcessMetricsAreRenderedWithTheirTypes) {
  ProcessStats p;
  p.cpu_seconds = 1.25;
  p.resident_memory_bytes = 4096;
  p.virtual_memory_bytes = 8192;
  p.open_fds = 7;
  p.max_fds = 1024;
  p.start_time_seconds = 1700000000.5;
  const std::string expected =
      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
      "# TYPE process_cpu_seconds_total counter\n"
      "process_cpu_seconds_total 1.25\n"
      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
      "# TYPE process_resident_memory_bytes gauge\n"
      "process_resident_memory_bytes 4096\n"
      "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
      "# TYPE process_virtual_memory_bytes gauge\n"
      "process_virtual_memory_bytes 8192\n"
      "# HELP process_open_fds Number of open file descriptors.\n"
      "# TYPE process_open_fds gauge\n"
      "process_open_fds 7\n"
      "# HELP process_max_fds Maximum number of open file descriptors.\n"
      "# TYPE process_max_fds gauge\n"
      "process_max_fds 1024\n"
      "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
      "# TYPE process_start_time_seconds gauge\n"
      "process_start_time_seconds 1700000000.5\n";
  EXPECT_EQ(render_process_metrics(p), expected);
}

TEST(MetricsPrometheus, ProcessFiguresAreReadFromProc) {
  const ProcessStats before = read_process_stats();
  EXPECT_GT(before.resident_memory_bytes, 0U);
  EXPECT_GT(before.virtual_memory_bytes, before.resident_memory_bytes);
  EXPECT_GE(before.max_fds, before.open_fds);
  // Started before now and after 2020 (the clock of any machine running this).
  EXPECT_LE(before.start_time_seconds, static_cast<double>(std::time(nullptr)) + 1);
  EXPECT_GT(before.start_time_seconds, 1577836800.0);
  // Three more descriptors are counted as three more.
  int fds[3];
  for (int& fd : fds) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const ProcessStats after = read_process_stats();
  for (const int fd : fds) ::close(fd);
  EXPECT_EQ(after.open_fds, before.open_fds + 3);
  EXPECT_GE(after.cpu_seconds, before.cpu_seconds);
}

TEST(MetricsPrometheus, RenderPrometheusHasBothParts) {
  const std::string text = render_prometheus(known_snapshot());
  EXPECT_NE(text.find("\nsockserv_accepted_total 12\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE process_open_fds gauge\n"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace sockserv::metrics
