// SPDX-License-Identifier: MIT
// `sockserv serve --metrics`: the endpoint answers a real HTTP client (Python's urllib) with the
// Prometheus text format, which `promtool check metrics` accepts; its counters only grow while
// clients load the server, and end at exactly what the clients did; other paths get 404,
// malformed requests 400, and none of it disturbs the server.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;

// A `sockserv serve` with its metrics endpoint, both on loopback ports it picked.
struct MetricsServer {
  explicit MetricsServer(const std::string& mode)
      : proc({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--mode", mode, "--handler", "echo",
              "--metrics", "127.0.0.1:0"}) {
    const auto banner = proc.read_line(20s);
    if (!banner || !banner->starts_with("listening on ")) return;
    server = Address::parse(banner->substr(13));
    // "metrics on ADDRESS" goes to stderr before the banner goes to stdout; pump until read.
    for (int i = 0; i < 100 && proc.err().find('\n') == std::string::npos; ++i) {
      proc.read_line(100ms);
    }
    const std::string& err = proc.err();
    const auto at = err.find("metrics on ");
    if (at == std::string::npos) return;
    metrics = Address::parse(err.substr(at + 11, err.find('\n', at) - at - 11));
    ready = true;
  }
  ~MetricsServer() {
    proc.kill(SIGTERM);
    proc.wait(15s);
  }

  test::Process proc;
  Address server;
  Address metrics;
  bool ready = false;
};

// One HTTP exchange over a plain socket: the whole response (the server closes after it).
std::string http_exchange(const Address& address, std::string_view request) {
  auto sock = test::connect_to(address);
  sock.settimeout(10s);
  sock.sendall(request);
  std::string response;
  for (std::string chunk; !(chunk = sock.recv(65536)).empty();) response += chunk;
  return response;
}

std::string scrape(const Address& address) {
  const std::string response =
      http_exchange(address, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  const auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of the sample written exactly as `sample` ("name" or "name{labels}"); -1 if absent.
double value_of(const std::string& body, const std::string& sample) {
  const auto at = ("\n" + body).find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::strtod(body.c_str() + at + sample.size() + 1, nullptr);
}

TEST(MetricsServe, UrllibGetsTheExpositionAndPromtoolAcceptsIt) {
  MetricsServer s("threading");
  ASSERT_TRUE(s.ready) << s.proc.err();
  const std::string url = "http://" + s.metrics.to_string() + "/metrics";
  const auto fetched =
      test::run_command({test::python3(), "-c",
                         "import sys, urllib.request\n"
                         "with urllib.request.urlopen(sys.argv[1], timeout=10) as r:\n"
                         "    print(r.status, r.headers['Content-Type'])\n"
                         "    sys.stdout.write(r.read().decode())\n",
                         url});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  const auto first_line = fetched.out.find('\n');
  EXPECT_EQ(fetched.out.substr(0, first_line), "200 text/plain; version=0.0.4; charset=utf-8");
  const std::string body = fetched.out.substr(first_line + 1);
  EXPECT_EQ(value_of(body, "sockserv_accepted_total"), 0) << body;
  EXPECT_EQ(value_of(body, "sockserv_rejected_total{reason=\"denied\"}"), 0) << body;
  EXPECT_GT(value_of(body, "process_resident_memory_bytes"), 0) << body;
  EXPECT_GT(value_of(body, "process_open_fds"), 0) << body;
  EXPECT_GT(value_of(body, "process_start_time_seconds"), 0) << body;

  if (!test::have_program("promtool")) {
    GTEST_SKIP() << "promtool is not installed (scripts/bootstrap.sh test installs Debian's "
                    "prometheus package): the format was not checked by it";
  }
  const auto checked = test::run_command({"promtool", "check", "metrics"}, body);
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err << body;
  // promtool's linter is silent on a clean exposition: any output is a finding.
  EXPECT_EQ(checked.out + checked.err, "") << body;
}

TEST(MetricsServe, CountersOnlyGrowUnderLoadAndEndAtWhatTheClientsDid) {
  MetricsServer s("threading");
  ASSERT_TRUE(s.ready) << s.proc.err();
  constexpr int clients = 4;
  constexpr int connections_each = 100;
  const std::string line = "metrics under load\n";
  std::atomic<int> finished{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      for (int i = 0; i < connections_each; ++i) {
        try {
          auto sock = test::connect_to(s.server);
          sock.settimeout(10s);
          sock.sendall(line);
          if (sock.recv_exact(line.size()) != line) ++failures;
        } catch (const std::exception&) {
          ++failures;
        }
      }
      ++finished;
    });
  }
  const char* counters[] = {"sockserv_accepted_total", "sockserv_received_bytes_total",
                            "sockserv_sent_bytes_total", "process_cpu_seconds_total"};
  std::vector<double> last(std::size(counters), 0);
  int scrapes_under_load = 0;
  for (int i = 0; i < 10000 && finished < clients; ++i) {
    const std::string body = scrape(s.metrics);
    for (std::size_t k = 0; k < std::size(counters); ++k) {
      const double now = value_of(body, counters[k]);
      EXPECT_GE(now, last[k]) << counters[k] << " went down\n" << body;
      last[k] = now;
    }
    ++scrapes_under_load;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(scrapes_under_load, 0);
  // The handlers credit their bytes as they end: scrape until none is active (bounded).
  std::string body;
  for (int i = 0; i < 1000; ++i) {
    body = scrape(s.metrics);
    if (value_of(body, "sockserv_active_requests") == 0 &&
        value_of(body, "sockserv_accepted_total") == clients * connections_each) {
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  const double total = clients * connections_each;
  EXPECT_EQ(value_of(body, "sockserv_accepted_total"), total) << body;
  EXPECT_EQ(value_of(body, "sockserv_received_bytes_total"), total * line.size()) << body;
  EXPECT_EQ(value_of(body, "sockserv_sent_bytes_total"), total * line.size()) << body;
  EXPECT_GE(value_of(body, "sockserv_accepted_total"), last[0]);
}

// Forking mode: the parent counts its running children as active requests, and what a child
// counted (its bytes) reaches the parent's counters when it ends, through memory the two share.
TEST(MetricsServe, AForkingServerCountsItsChildrenAndWhatTheyDid) {
  MetricsServer s("forking");
  ASSERT_TRUE(s.ready) << s.proc.err();
  const std::string line = "counted by a child\n";
  {
    auto held = test::connect_to(s.server);
    held.settimeout(10s);
    held.sendall(line);
    ASSERT_EQ(held.recv_exact(line.size()), line);  // a child serves it now
    EXPECT_EQ(value_of(scrape(s.metrics), "sockserv_active_requests"), 1);
  }
  // The child ends with the connection, and the parent reaps it within its poll interval.
  std::string body;
  for (int i = 0; i < 1000; ++i) {
    body = scrape(s.metrics);
    if (value_of(body, "sockserv_active_requests") == 0 &&
        value_of(body, "sockserv_sent_bytes_total") == static_cast<double>(line.size())) {
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(value_of(body, "sockserv_active_requests"), 0) << body;
  EXPECT_EQ(value_of(body, "sockserv_received_bytes_total"), line.size()) << body;
  EXPECT_EQ(value_of(body, "sockserv_sent_bytes_total"), line.size()) << body;
  EXPECT_EQ(value_of(body, "sockserv_accepted_total"), 1) << body;
}

TEST(MetricsServe, OtherPathsAre404AndMalformedRequests400WhileTheServerServes) {
  MetricsServer s("async");
  ASSERT_TRUE(s.ready) << s.proc.err();
  EXPECT_TRUE(http_exchange(s.metrics, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
  EXPECT_TRUE(http_exchange(s.metrics, "garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(
      http_exchange(s.metrics, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
  // A head that never ends is cut at the bound, not read forever.
  EXPECT_TRUE(http_exchange(s.metrics, std::string(20000, 'x')).starts_with("HTTP/1.1 400 "));
  // The served server is untouched, and its counters show it.
  {
    auto sock = test::connect_to(s.server);
    sock.sendall("hello\n");
    EXPECT_EQ(sock.recv_exact(6), "hello\n");
  }
  const std::string response = http_exchange(s.metrics, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
  EXPECT_EQ(value_of(response.substr(response.find("\r\n\r\n") + 4), "sockserv_accepted_total"), 1)
      << response;
  // SIGTERM stops both: the process exits 0.
  s.proc.kill(SIGTERM);
  EXPECT_EQ(s.proc.wait(15s), 0) << s.proc.err();
}

}  // namespace
}  // namespace sockserv
