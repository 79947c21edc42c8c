// SPDX-License-Identifier: MIT
// The socketserver conformance scenario (CPython's run_server + stream_examine/dgram_examine) on
// the event-loop servers: AsyncTCPServer over IPv4 and IPv6, AsyncUnixStreamServer on a path and
// in the abstract namespace, AsyncUDPServer over IPv4, IPv6 and a Unix datagram path, each with
// one and with three event loops. The server binds port 0 (or a fresh path), serve_forever() runs
// in a thread, three clients in turn get their line echoed, then shutdown(), server_close(): the
// socket is closed, the Unix socket file removed, and no descriptor is left behind.
#include <sockserv/aio/server.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;
using test::TempDir;

constexpr std::string_view test_str = "hello world\n";  // Python's TEST_STR

enum class Transport { tcp4, tcp6, unix_path, unix_abstract, udp4, udp6, unix_dgram };

bool is_stream(Transport t) {
  return t == Transport::tcp4 || t == Transport::tcp6 || t == Transport::unix_path ||
         t == Transport::unix_abstract;
}

Address pick_address(Transport t, const TempDir& dir) {
  switch (t) {
    case Transport::tcp4:
    case Transport::udp4:
      return test::loopback4();
    case Transport::tcp6:
    case Transport::udp6:
      return test::loopback6();
    case Transport::unix_abstract:
      return Address::abstract(test::unique_abstract_name());
    default:
      return Address::unix_path(dir.path("server.sock"));
  }
}

// Runs serve_forever() on a thread; the destructor shuts the server down and joins, so a failed
// assertion never leaves a serving thread behind.
class Serving {
 public:
  explicit Serving(AsyncServerBase& server) : server_(server) {
    thread_ = std::thread([this] {
      try {
        server_.serve_forever();
      } catch (...) {
        error_ = std::current_exception();
      }
    });
  }
  ~Serving() { stop(); }
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;
  void stop() {
    if (!thread_.joinable()) return;
    server_.shutdown();
    thread_.join();
    if (error_) ADD_FAILURE() << "serve_forever threw";
  }

 private:
  AsyncServerBase& server_;
  std::thread thread_;
  std::exception_ptr error_;
};

using test::eventually;

// The handlers record the thread they ran on, to show how connections spread over the loops.
struct ThreadLog {
  std::mutex mutex;
  std::set<std::thread::id> threads;
  void add() {
    std::lock_guard lock(mutex);
    threads.insert(std::this_thread::get_id());
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return threads.size();
  }
};

ConnectionHandler echo_lines(ThreadLog& log) {
  return [&log](Connection conn) -> Task<void> {
    log.add();
    for (std::string line; !(line = co_await conn.readline()).empty();) co_await conn.sendall(line);
  };
}

DatagramHandler echo_datagrams(ThreadLog& log) {
  return [&log](Datagram d) -> Task<void> {
    log.add();
    d.reply(d.data);
    co_return;
  };
}

void stream_examine(const Address& address) {
  Socket sock(address.family(), SOCK_STREAM);
  sock.settimeout(5s);
  sock.connect(address);
  sock.sendall(test_str);
  std::string got;
  while (got.size() < test_str.size()) {
    const auto chunk = sock.recv(100);
    if (chunk.empty()) break;
    got += chunk;
  }
  EXPECT_EQ(got, test_str);
}

void dgram_examine(const Address& address, const TempDir& dir, int n) {
  Socket sock(address.family(), SOCK_DGRAM);
  sock.settimeout(5s);
  if (address.is_unix()) sock.bind(Address::unix_path(dir.path("client" + std::to_string(n))));
  sock.sendto(test_str, address);
  const auto [data, from] = sock.recvfrom(100);
  EXPECT_EQ(data, test_str);
  EXPECT_EQ(from, address);
}

struct Case {
  Transport transport;
  std::size_t threads;
  bool listener_per_loop = false;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  static const char* names[] = {"AsyncTCPServer",
                                "AsyncTCPServer_IPv6",
                                "AsyncUnixStreamServer",
                                "AsyncUnixStreamServer_Abstract",
                                "AsyncUDPServer",
                                "AsyncUDPServer_IPv6",
                                "AsyncUDPServer_UnixDatagram"};
  return (std::string(names[static_cast<int>(info.param.transport)]) + "_threads" +
          std::to_string(info.param.threads)) +
         (info.param.listener_per_loop ? "_listener_per_loop" : "");
}

class AsyncServerTest : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const auto t = GetParam().transport;
    if ((t == Transport::tcp6 || t == Transport::udp6) && !test::ipv6_available()) {
      GTEST_SKIP() << "no ::1 on this machine";
    }
  }

  static std::unique_ptr<AsyncServerBase> remake_unbound(Transport t, const Address& address,
                                                         ThreadLog& log) {
    if (is_stream(t)) return std::make_unique<AsyncTCPServer>(address, echo_lines(log), false);
    return std::make_unique<AsyncUDPServer>(address, echo_datagrams(log), false);
  }

  std::unique_ptr<AsyncServerBase> make_server(const Address& address, ThreadLog& log) {
    const auto t = GetParam().transport;
    std::unique_ptr<AsyncServerBase> server;
    if (GetParam().listener_per_loop) {  // set before binding: the first socket needs SO_REUSEPORT
      server = remake_unbound(t, address, log);
      server->listener_per_loop = true;
      server->threads = GetParam().threads;  // the loops' sockets are bound with the server's
      server->bind_and_activate();
    } else if (t == Transport::unix_path || t == Transport::unix_abstract) {
      server = std::make_unique<AsyncUnixStreamServer>(address, echo_lines(log));
    } else if (is_stream(t)) {
      server = std::make_unique<AsyncTCPServer>(address, echo_lines(log));
    } else {
      server = std::make_unique<AsyncUDPServer>(address, echo_datagrams(log));
    }
    server->threads = GetParam().threads;
    return server;
  }
};

TEST_P(AsyncServerTest, EchoesThreeClientsInTurnThenShutsDownAndCloses) {
  TempDir dir;
  const auto fds_before = test::count_open_fds();
  ThreadLog log;
  auto server = make_server(pick_address(GetParam().transport, dir), log);
  const Address address = server->server_address;
  if (address.is_inet()) {
    EXPECT_NE(address.port(), 0);  // port 0 was replaced by the real one
  }
  {
    Serving serving(*server);
    for (int i = 0; i < 3; ++i) {
      if (is_stream(GetParam().transport)) {
        stream_examine(address);
      } else {
        dgram_examine(address, dir, i);
      }
    }
    serving.stop();
  }
  EXPECT_EQ(server->active_tasks(), 0U);
  EXPECT_GE(server->socket.fileno(), 0);  // shutdown() does not close the socket
  server->server_close();
  EXPECT_EQ(server->socket.fileno(), -1);
  server->server_close();  // idempotent
  if (address.is_unix() && !address.is_abstract()) {
    struct stat st {};
    EXPECT_NE(::stat(address.path().c_str(), &st), 0) << "the socket file was not removed";
  }
  server.reset();
  EXPECT_EQ(test::count_open_fds(), fds_before);
}

TEST_P(AsyncServerTest, ServesConcurrentClientsOnEveryLoop) {
  TempDir dir;
  ThreadLog log;
  auto server = make_server(pick_address(GetParam().transport, dir), log);
  const Address address = server->server_address;
  Serving serving(*server);
  constexpr int clients = 30;
  if (is_stream(GetParam().transport)) {
    // All connected at once, then each is answered: no connection waits for another.
    std::vector<Socket> socks;
    for (int i = 0; i < clients; ++i) {
      socks.emplace_back(address.family(), SOCK_STREAM);
      socks.back().settimeout(5s);
      socks.back().connect(address);
    }
    for (int i = clients - 1; i >= 0; --i) {
      const std::string line = "client " + std::to_string(i) + "\n";
      socks[static_cast<std::size_t>(i)].sendall(line);
      EXPECT_EQ(socks[static_cast<std::size_t>(i)].recv_exact(line.size()), line);
    }
  } else {
    for (int i = 0; i < clients; ++i) dgram_examine(address, dir, i);
  }
  serving.stop();
  EXPECT_GE(log.size(), 1U);
  EXPECT_LE(log.size(), GetParam().threads);
  if (GetParam().listener_per_loop) {
    // The kernel hashes each client to one of the loops' sockets: 30 clients from 30 ports miss
    // one of 3 sockets with a chance of 3 x (2/3)^30, about 1 in 70,000.
    EXPECT_EQ(log.size(), GetParam().threads) << "a loop's own socket received nothing";
  }
  RecordProperty("loops_used", static_cast<int>(log.size()));
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto t :
       {Transport::tcp4, Transport::tcp6, Transport::unix_path, Transport::unix_abstract,
        Transport::udp4, Transport::udp6, Transport::unix_dgram}) {
    for (const std::size_t threads : {1U, 3U}) cases.push_back({t, threads});
  }
  cases.push_back({Transport::tcp4, 3, true});
  cases.push_back({Transport::udp4, 3, true});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Servers, AsyncServerTest, testing::ValuesIn(all_cases()), case_name);

// ---- Server attributes -------------------------------------------------------------------------

TEST(AsyncServerAttributesTest, UnixStreamServerRejectsAnInetAddress) {
  EXPECT_THROW(
      AsyncUnixStreamServer(test::loopback4(), [](Connection) -> Task<void> { co_return; }),
      std::invalid_argument);
}

TEST(AsyncServerAttributesTest, BindAndActivateFalseLetsAttributesBeSetFirst) {
  AsyncTCPServer server(
      test::loopback4(), [](Connection) -> Task<void> { co_return; }, false);
  EXPECT_EQ(server.server_address.port(), 0);  // not bound yet
  server.request_queue_size = 1;
  server.bind_and_activate();
  EXPECT_NE(server.server_address.port(), 0);
  EXPECT_EQ(server.socket.getsockname(), server.server_address);
}

TEST(AsyncServerAttributesTest, BindingAnAddressInUseThrowsAndClosesTheSocket) {
  Socket taken(AF_INET, SOCK_STREAM);
  taken.bind(test::loopback4());
  taken.listen();
  const auto fds_before = test::count_open_fds();
  EXPECT_TRUE(test::throws_code<SocketError>(
      [&] {
        AsyncTCPServer server(taken.getsockname(), [](Connection) -> Task<void> { co_return; });
      },
      std::errc::address_in_use));
  EXPECT_EQ(test::count_open_fds(), fds_before);
}

TEST(AsyncServerAttributesTest, ServeForeverTwiceAtOnceThrowsLogicError) {
  AsyncTCPServer server(test::loopback4(), [](Connection) -> Task<void> { co_return; });
  server.threads = 1;
  std::atomic<bool> in_handler{false};
  server.RequestHandlerClass = [&in_handler](Connection conn) -> Task<void> {
    in_handler = true;
    (void)co_await conn.recv();
  };
  Serving serving(server);
  // Once a connection is being handled, serve_forever() is certainly running.
  Socket client(AF_INET, SOCK_STREAM);
  client.settimeout(5s);
  client.connect(server.server_address);
  ASSERT_TRUE(eventually([&] { return in_handler.load(); }));
  EXPECT_THROW(server.serve_forever(), std::logic_error);
}

}  // namespace
}  // namespace sockserv::aio
