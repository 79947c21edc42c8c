// SPDX-License-Identifier: MIT
// Issue 5, behind a load balancer: a real nginx (Debian's package with its stream module,
// installed by scripts/bootstrap.sh test), started by the test on loopback ports as a `stream`
// proxy with `proxy_protocol on`, in front of two `sockserv serve --proxy-protocol --handler
// whoami` processes (threading and async). Each client through nginx is told its own address
// and port - the handlers see the real clients, not nginx - and nginx's round robin reaches both
// backends. Skipped, with a message, only when nginx is not installed.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv command"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* stream_module = "/usr/lib/nginx/modules/ngx_stream_module.so";

std::optional<std::string> find_nginx() {
  if (test::have_program("nginx")) return "nginx";
  if (::access("/usr/sbin/nginx", X_OK) == 0) return "/usr/sbin/nginx";
  return std::nullopt;
}

// A port nothing listens on right now (bound, read back, closed: another process could take it
// before nginx does, a race this test accepts).
std::uint16_t free_port() {
  Socket s(AF_INET, SOCK_STREAM);
  s.bind(Address::ipv4("127.0.0.1", 0));
  return s.getsockname().port();
}

using test::recv_line;

// A `sockserv serve` backend; address() from its banner.
struct Backend {
  explicit Backend(const std::string& mode)
      : proc({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--proxy-protocol", "--handler",
              "whoami", "--mode", mode, "--threads", "1", "--stats", "0.2"}) {
    const auto banner = proc.read_line(20s);
    if (!banner) throw std::runtime_error("no banner: " + proc.err());
    address = Address::parse(banner->substr(banner->rfind(' ') + 1));
  }
  // Stops the backend and returns how many connections it accepted (its last stats line).
  long stop_and_count() {
    proc.kill(SIGTERM);
    EXPECT_EQ(proc.wait(15s), 0) << proc.err();
    proc.read_to_eof(5s);
    const auto at = proc.err().rfind("accepted=");
    return at == std::string::npos ? -1 : std::stol(proc.err().substr(at + 9));
  }
  test::Process proc;
  Address address;
};

std::string nginx_config(const test::TempDir& dir, const Backend& a, const Backend& b,
                         std::uint16_t port) {
  std::string conf;
  if (::access(stream_module, R_OK) == 0) {
    conf += "load_module " + std::string(stream_module) + ";\n";
  }
  // master_process off: one process, so stopping (or killing) its pid leaves no worker behind.
  conf += "daemon off;\nmaster_process off;\nworker_processes 1;\n";
  conf += "pid " + dir.path("nginx.pid") + ";\n";
  conf += "error_log " + dir.path("error.log") + " warn;\n";
  conf += "events { worker_connections 128; }\n";
  conf += "stream {\n";
  conf += "  upstream backends {\n";
  conf += "    server " + a.address.to_string() + ";\n";
  conf += "    server " + b.address.to_string() + ";\n";
  conf += "  }\n";
  conf += "  server {\n";
  conf += "    listen 127.0.0.1:" + std::to_string(port) + ";\n";
  conf += "    proxy_pass backends;\n";
  conf += "    proxy_protocol on;\n";
  conf += "  }\n";
  conf += "}\n";
  return conf;
}

// Waits until nginx has written its pid file: it does so after opening its listening sockets
// (probing with a connection instead would send one more connection to a backend).
bool wait_started(const std::string& pid_file, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    std::ifstream in(pid_file);
    std::string pid;
    if (in >> pid && !pid.empty()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(NginxProxyTest, HandlersSeeTheRealClientsThroughNginxAndBothBackendsServe) {
  const auto nginx = find_nginx();
  if (!nginx) {
    GTEST_SKIP() << "nginx is not installed (scripts/bootstrap.sh test installs nginx and "
                    "libnginx-mod-stream)";
  }
  test::TempDir dir;
  Backend threading("threading");
  Backend async("async");
  const std::uint16_t port = free_port();
  const Address front = Address::ipv4("127.0.0.1", port);
  { std::ofstream(dir.path("nginx.conf")) << nginx_config(dir, threading, async, port); }
  test::Process proxy(
      {*nginx, "-p", dir.path() + "/", "-c", dir.path("nginx.conf"), "-e", dir.path("error.log")});
  ASSERT_TRUE(wait_started(dir.path("nginx.pid"), 10s))
      << "nginx did not start: " << read_file(dir.path("error.log")) << proxy.err();

  for (int i = 0; i < 20; ++i) {
    Socket client = create_connection(front, 5s);
    client.settimeout(5s);
    client.sendall("who am i?\n");
    // Through nginx, yet the handler names this very socket: address and port.
    EXPECT_EQ(recv_line(client), client.getsockname().to_string() + "\n") << "client " << i;
  }

  proxy.kill(SIGQUIT);  // graceful stop
  EXPECT_TRUE(proxy.wait(10s).has_value()) << read_file(dir.path("error.log"));
  const long a = threading.stop_and_count();
  const long b = async.stop_and_count();
  EXPECT_GT(a, 0) << "the threading backend got no connection";
  EXPECT_GT(b, 0) << "the async backend got no connection";
  EXPECT_EQ(a + b, 20);
}

}  // namespace
}  // namespace sockserv
