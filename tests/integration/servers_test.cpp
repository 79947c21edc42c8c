// SPDX-License-Identifier: MIT
// The conformance matrix: a port of CPython's Lib/test/test_socketserver.py SocketServerTest
// (run_server, stream_examine, dgram_examine). Every server class, {sync, Threading, Forking} x
// {TCP, TCP over IPv6, Unix stream, UDP, UDP over IPv6, Unix datagram}, serves a one-line echo to
// three clients in turn, then is shut down and closed. Test names are the Python class names
// (TCPServer, ThreadingUDPServer, ForkingUnixDatagramServer, ...; "_IPv6" for the IPv6 rows).
//
// After each server: its socket is closed (fileno() == -1), no handler thread or child is left,
// no zombie, the process has as many threads as before, and a child the test started before the
// server (Python's simple_subprocess, issue 1540386) was not reaped by the server.
#include <sockserv/handlers.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>

#include "support/test_support.hpp"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::TempDir;

constexpr std::string_view test_str = "hello world\n";  // Python's TEST_STR
constexpr int unrelated_exit_code = 72;

enum class Transport { tcp4, tcp6, unix_stream, udp4, udp6, unix_dgram };

bool is_stream(Transport t) {
  return t == Transport::tcp4 || t == Transport::tcp6 || t == Transport::unix_stream;
}

bool is_ipv6(Transport t) { return t == Transport::tcp6 || t == Transport::udp6; }

// Python's pickaddr(): port 0 on loopback, or a fresh path in the test's own directory.
Address pick_address(Transport t, const TempDir& dir) {
  switch (t) {
    case Transport::tcp4:
    case Transport::udp4:
      return test::loopback4();
    case Transport::tcp6:
    case Transport::udp6:
      return test::loopback6();
    default:
      return Address::unix_path(dir.path("server.sock"));
  }
}

// The tasks (threads) of this process, from /proc/self/task.
std::size_t count_threads() {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  std::size_t n = 0;
  while (const dirent* entry = ::readdir(dir)) n += entry->d_name[0] != '.';
  ::closedir(dir);
  return n;
}

using test::eventually;

// Reads until a '\n' (or EOF); each recv may wait up to 10 s (Python's receive()).
std::string receive_line(Socket& sock) {
  sock.settimeout(10s);
  std::string got;
  while (got.find('\n') == std::string::npos) {
    const std::string chunk = sock.recv(100);
    if (chunk.empty()) break;
    got += chunk;
  }
  return got;
}

void stream_examine(const Address& address) {
  Socket sock(address.family(), SOCK_STREAM);
  sock.settimeout(10s);
  sock.connect(address);
  sock.sendall(test_str);
  EXPECT_EQ(receive_line(sock), test_str);
}

// A Unix datagram client must bind a path of its own, or the server's reply has nowhere to go.
void dgram_examine(const Address& address, const TempDir& dir, int round) {
  Socket sock(address.family(), SOCK_DGRAM);
  if (address.is_unix()) {
    sock.bind(Address::unix_path(dir.path("client" + std::to_string(round) + ".sock")));
  }
  sock.settimeout(10s);
  sock.sendto(test_str, address);
  EXPECT_EQ(receive_line(sock), test_str);
}

RequestHandlerFactory echo_handler(Transport t) {
  if (is_stream(t)) {
    return handler<StreamRequestHandler>(
        [](StreamRequestHandler& self) { self.wfile.write(self.rfile.readline()); });
  }
  return handler<DatagramRequestHandler>(
      [](DatagramRequestHandler& self) { self.wfile.write(self.rfile.readline()); });
}

// serve_forever() on its own thread; the destructor stops and joins it even when an assertion
// threw out of the test, so a failure never hangs or terminates the process.
class ServingThread {
 public:
  explicit ServingThread(BaseServer& server)
      : server_(server), thread_([this] { server_.serve_forever(10ms); }) {}
  ~ServingThread() { stop(); }
  void stop() {
    server_.shutdown();
    if (thread_.joinable()) thread_.join();
  }

 private:
  BaseServer& server_;
  std::thread thread_;
};

// Python's run_server(svrcls, hdlrbase, testfunc).
template <class Server>
void run_server(Transport transport) {
  TempDir dir;
  const Address address = pick_address(transport, dir);
  Server server(address, echo_handler(transport));
  EXPECT_EQ(server.server_address, server.socket.getsockname());
  {
    ServingThread serving(server);
    for (int round = 0; round < 3; ++round) {
      if (is_stream(transport)) {
        stream_examine(server.server_address);
      } else {
        dgram_examine(server.server_address, dir, round);
      }
    }
    serving.stop();
  }
  server.server_close();
  EXPECT_EQ(server.socket.fileno(), -1);
  if constexpr (requires { server.active_children; }) {
    EXPECT_TRUE(server.active_children.empty());  // bpo-31151
  }
  if constexpr (requires { server.active_threads(); }) {
    EXPECT_EQ(server.active_threads(), 0u);
  }
  if (address.is_unix()) {
    EXPECT_NE(::access(address.path().c_str(), F_OK), 0) << "socket file left behind";
  }
}

struct Case {
  const char* name;  // the Python class name
  Transport transport;
  void (*run)(Transport);
};

std::ostream& operator<<(std::ostream& out, const Case& c) { return out << c.name; }

const Case cases[] = {
    {"TCPServer", Transport::tcp4, &run_server<TCPServer>},
    {"ThreadingTCPServer", Transport::tcp4, &run_server<ThreadingTCPServer>},
    {"ForkingTCPServer", Transport::tcp4, &run_server<ForkingTCPServer>},
    {"TCPServer_IPv6", Transport::tcp6, &run_server<TCPServer>},
    {"ThreadingTCPServer_IPv6", Transport::tcp6, &run_server<ThreadingTCPServer>},
    {"ForkingTCPServer_IPv6", Transport::tcp6, &run_server<ForkingTCPServer>},
    {"UnixStreamServer", Transport::unix_stream, &run_server<UnixStreamServer>},
    {"ThreadingUnixStreamServer", Transport::unix_stream, &run_server<ThreadingUnixStreamServer>},
    {"ForkingUnixStreamServer", Transport::unix_stream, &run_server<ForkingUnixStreamServer>},
    {"UDPServer", Transport::udp4, &run_server<UDPServer>},
    {"ThreadingUDPServer", Transport::udp4, &run_server<ThreadingUDPServer>},
    {"ForkingUDPServer", Transport::udp4, &run_server<ForkingUDPServer>},
    {"UDPServer_IPv6", Transport::udp6, &run_server<UDPServer>},
    {"ThreadingUDPServer_IPv6", Transport::udp6, &run_server<ThreadingUDPServer>},
    {"ForkingUDPServer_IPv6", Transport::udp6, &run_server<ForkingUDPServer>},
    {"UnixDatagramServer", Transport::unix_dgram, &run_server<UnixDatagramServer>},
    {"ThreadingUnixDatagramServer", Transport::unix_dgram,
     &run_server<ThreadingUnixDatagramServer>},
    {"ForkingUnixDatagramServer", Transport::unix_dgram, &run_server<ForkingUnixDatagramServer>},
};

class SocketServerTest : public testing::TestWithParam<Case> {};

TEST_P(SocketServerTest, EchoesThreeClientsThenClosesCleanly) {
  const Case& c = GetParam();
  if (is_ipv6(c.transport) && !test::ipv6_available()) GTEST_SKIP() << "no IPv6 loopback";
  // A first thread makes the runtime start its own helpers (TSan's background thread), so that
  // they are counted before the server and not taken for a leak after it.
  std::thread([] {}).join();
  const std::size_t threads_before = count_threads();
  // Python's simple_subprocess: a child of the test itself, a zombie for the server's whole
  // life. A server that reaps with waitpid(-1) would take its exit status.
  const pid_t unrelated = ::fork();
  ASSERT_GE(unrelated, 0);
  if (unrelated == 0) ::_exit(unrelated_exit_code);

  c.run(c.transport);

  int status = 0;
  ASSERT_EQ(::waitpid(unrelated, &status, 0), unrelated) << "the server reaped a child not its own";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), unrelated_exit_code);
  // No zombie and no child left: nothing else to wait for.
  errno = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_TRUE(eventually([&] { return count_threads() <= threads_before; }))
      << count_threads() << " threads, " << threads_before << " before the server";
}

std::string case_name(const testing::TestParamInfo<Case>& param) { return param.param.name; }

INSTANTIATE_TEST_SUITE_P(Matrix, SocketServerTest, testing::ValuesIn(cases), case_name);

}  // namespace
}  // namespace sockserv
