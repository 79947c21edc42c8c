// SPDX-License-Identifier: MIT
// Starting, stopping and closing servers: the lifecycle half of CPython's test_socketserver.py
// (test_shutdown, test_close_immediately, test_tcpserver_bind_leak, test_context_manager,
// test_shutdown_request_called_if_verify_request_false, test_threads_reaped) plus the cases
// ANCHORS.md section 2.3 adds from known socketserver bugs: shutdown latency, shutdown from a
// handler, no accept after shutdown (bpo-35017), a connect burst against the backlog, the Unix
// socket file policy and SO_REUSEPORT.
#include <sockserv/error.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>

#include "support/test_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::TempDir;

using test::eventually;

std::size_t count_threads() {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  std::size_t n = 0;
  while (const dirent* entry = ::readdir(dir)) n += entry->d_name[0] != '.';
  ::closedir(dir);
  return n;
}

RequestHandlerFactory echo() {
  return handler<StreamRequestHandler>(
      [](StreamRequestHandler& self) { self.wfile.write(self.rfile.readline()); });
}

// Sends `line` and returns everything the server sends back before it closes.
std::string exchange(const Address& address, std::string_view line = "ping\n") {
  Socket sock(address.family(), SOCK_STREAM);
  sock.settimeout(10s);
  sock.connect(address);
  sock.sendall(line);
  std::string reply;
  while (true) {
    const std::string chunk = sock.recv(4096);
    if (chunk.empty()) return reply;
    reply += chunk;
  }
}

// serve_forever() on its own thread; the destructor stops and joins it even after a failed
// assertion threw, so a failure never hangs or terminates the process.
class ServingThread {
 public:
  explicit ServingThread(BaseServer& server, std::chrono::milliseconds poll = 10ms)
      : server_(server), thread_([this, poll] {
          server_.serve_forever(poll);
          done_ = true;
        }) {}
  ~ServingThread() { stop(); }
  void stop() {
    server_.shutdown();
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_; }

 private:
  BaseServer& server_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Python's test_shutdown (issue 2302): shutdown() right after the serving thread starts, before
// or after the loop got going, must end every loop.
TEST(ServerLifecycle, ShutdownEndsEveryLoopWhenCalledRightAfterStart) {
  std::vector<std::unique_ptr<TCPServer>> servers;
  std::vector<std::unique_ptr<ServingThread>> threads;
  for (int i = 0; i < 20; ++i) {
    servers.push_back(std::make_unique<TCPServer>(test::loopback4(), echo()));
    threads.push_back(std::make_unique<ServingThread>(*servers.back()));
    servers.back()->shutdown();
  }
  for (std::size_t i = 0; i < threads.size(); ++i) {
    EXPECT_TRUE(eventually([&] { return threads[i]->done(); })) << "loop " << i << " still runs";
  }
}

TEST(ServerLifecycle, ShutdownReturnsPromptlyWhenPollIntervalIsLong) {
  TCPServer server(test::loopback4(), echo());
  ServingThread serving(server, 60s);
  ASSERT_TRUE(eventually([&] { return server.serving(); }));
  const auto start = Clock::now();
  server.shutdown();
  EXPECT_LT(Clock::now() - start, 5s);  // the eventfd wakes the loop; it never waits 60 s
  EXPECT_FALSE(server.serving());
}

// A synchronous server's handler runs on the serving thread: Python deadlocks here; we only
// ask, and the loop ends after this request.
TEST(ServerLifecycle, ShutdownFromSyncHandlerEndsLoopWithoutDeadlock) {
  TCPServer server(test::loopback4(), handler<StreamRequestHandler>([](StreamRequestHandler& self) {
                     self.server.shutdown();
                     self.wfile.write("bye\n");
                   }));
  ServingThread serving(server);
  ASSERT_TRUE(eventually([&] { return server.serving(); }));
  EXPECT_EQ(exchange(server.server_address), "bye\n");
  EXPECT_TRUE(eventually([&] { return serving.done(); }));
}

// From a handler thread, shutdown() waits for the loop to end (it is another thread), then the
// handler goes on; server_close() then joins it.
TEST(ServerLifecycle, ShutdownFromThreadingHandlerWaitsForLoopThenReturns) {
  ThreadingTCPServer server(test::loopback4(),
                            handler<StreamRequestHandler>([](StreamRequestHandler& self) {
                              self.server.shutdown();
                              self.wfile.write(self.server.serving() ? "serving\n" : "stopped\n");
                            }));
  ServingThread serving(server);
  ASSERT_TRUE(eventually([&] { return server.serving(); }));
  EXPECT_EQ(exchange(server.server_address), "stopped\n");
  EXPECT_TRUE(eventually([&] { return serving.done(); }));
  server.server_close();
  EXPECT_EQ(server.active_threads(), 0u);
}

// Python's test_close_immediately: no thread was ever started.
TEST(ServerLifecycle, ServerCloseWorksWhenNeverServed) {
  ThreadingTCPServer server(test::loopback4(), [](Request&, const Address&, BaseServer&) {});
  server.server_close();
  EXPECT_EQ(server.fileno(), -1);
  server.server_close();  // idempotent
  EXPECT_EQ(server.fileno(), -1);
}

// Python's test_tcpserver_bind_leak (bpo-22435): a failed bind closes the socket (and here the
// wake-up eventfd) every time.
TEST(ServerLifecycle, FailedBindsLeakNoDescriptor) {
  TCPServer holder(test::loopback4(), echo());
  const Address taken = holder.server_address;
  TempDir dir;
  const Address nowhere = Address::unix_path(dir.path("missing/dir/server.sock"));
  const std::size_t before = test::count_open_fds();
  int wrong = 0;
  for (int i = 0; i < 1000; ++i) {
    wrong += !test::throws_code<SocketError>([&] { TCPServer s(taken, echo()); },
                                             std::errc::address_in_use);
    wrong += !test::throws_code<SocketError>([&] { UnixStreamServer s(nowhere, echo()); },
                                             std::errc::no_such_file_or_directory);
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(test::count_open_fds(), before);
}

// Python's test_context_manager: leaving the scope closes the server (RAII).
TEST(ServerLifecycle, DestructorClosesSocketAndRemovesSocketFile) {
  TempDir dir;
  Address tcp_address;
  const Address unix_address = Address::unix_path(dir.path("s.sock"));
  int fd = -1;
  {
    TCPServer server(test::loopback4(), echo());
    UnixStreamServer unix_server(unix_address, echo());
    tcp_address = server.server_address;
    fd = server.fileno();
    EXPECT_EQ(::access(unix_address.path().c_str(), F_OK), 0);
  }
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  Socket client(AF_INET, SOCK_STREAM);
  EXPECT_EQ(client.connect_ex(tcp_address), ECONNREFUSED);
  EXPECT_NE(::access(unix_address.path().c_str(), F_OK), 0);
}

class CountingServer : public TCPServer {
 public:
  using TCPServer::TCPServer;
  bool verify_request(Request& request, const Address& client_address) override {
    ++verified;
    return refuse ? false : TCPServer::verify_request(request, client_address);
  }
  void shutdown_request(Request& request) override {
    ++shut_down;
    TCPServer::shutdown_request(request);
  }
  void handle_timeout() override { ++timeouts; }

  bool refuse = false;
  std::atomic<int> verified{0};
  std::atomic<int> shut_down{0};
  int timeouts = 0;
};

// bpo-35017: once shutdown() is asked, a connection already waiting is not accepted. Here the
// handler of the first request connects a second client (it sits in the backlog), then asks
// for shutdown: the loop must end without taking it.
TEST(ServerLifecycle, NoRequestIsAcceptedAfterShutdownWasAsked) {
  Socket second;
  CountingServer server(test::loopback4(),
                        handler<StreamRequestHandler>([&second](StreamRequestHandler& self) {
                          second = Socket(AF_INET, SOCK_STREAM);
                          second.connect(static_cast<TCPServer&>(self.server).server_address);
                          self.server.shutdown();
                          self.wfile.write("first\n");
                        }));
  ServingThread serving(server);
  EXPECT_EQ(exchange(server.server_address), "first\n");
  ASSERT_TRUE(eventually([&] { return serving.done(); }));
  EXPECT_EQ(server.verified, 1);
  server.server_close();
  second.settimeout(5s);
  std::error_code ec;
  char byte;
  // Never accepted, now closed: the kernel resets the queued connection (or it sees EOF).
  EXPECT_EQ(second.recv_into({&byte, 1}, ec), 0u);
}

TEST(ServerLifecycle, HandleRequestCallsHandleTimeoutWhenTimeoutPasses) {
  CountingServer server(test::loopback4(), echo());
  server.timeout = 50ms;
  const auto start = Clock::now();
  server.handle_request();
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(server.timeouts, 1);
  EXPECT_EQ(server.verified, 0);
}

TEST(ServerLifecycle, HandleRequestHandlesWaitingClientWithoutTimeout) {
  CountingServer server(test::loopback4(), echo());
  server.timeout = 10s;
  Socket client = create_connection(server.server_address, 10s);
  client.sendall("hi\n");
  server.handle_request();
  EXPECT_EQ(server.timeouts, 0);
  EXPECT_EQ(server.verified, 1);
  EXPECT_EQ(client.recv(16), "hi\n");
}

// Python's test_shutdown_request_called_if_verify_request_false (bpo-26309).
TEST(ServerLifecycle, RefusedRequestIsShutDownExactlyOnce) {
  std::atomic<int> handled{0};
  CountingServer server(test::loopback4(),
                        [&handled](Request&, const Address&, BaseServer&) { ++handled; });
  server.refuse = true;
  Socket client = create_connection(server.server_address, 10s);
  server.handle_request();
  EXPECT_EQ(server.verified, 1);
  EXPECT_EQ(server.shut_down, 1);
  EXPECT_EQ(handled, 0);
  EXPECT_EQ(client.recv(16), "");  // closed by the server
}

// Python's test_threads_reaped (bpo-37193): finished handler threads do not pile up.
TEST(ServerLifecycle, ThreadingServerReapsThreadsOverManyRequests) {
  std::thread([] {}).join();  // starts the runtime's helper threads (TSan) before counting
  const std::size_t threads_before = count_threads();
  ThreadingTCPServer server(test::loopback4(), echo());
  ServingThread serving(server);
  std::size_t most_threads = 0;
  std::size_t most_active = 0;
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(exchange(server.server_address), "ping\n");
    most_threads = std::max(most_threads, count_threads());
    most_active = std::max(most_active, server.active_threads());
  }
  EXPECT_LT(most_threads, threads_before + 10);
  EXPECT_LT(most_active, 10u);
  EXPECT_TRUE(eventually([&] { return server.active_threads() == 0; }));
  serving.stop();
  server.server_close();
}

// A datagram handler replies through the server's own socket, so a blocking server_close() must
// wait for the handler threads before it closes that socket. (Python closes first and joins
// after: the late reply fails with EBADF; in C++ it would be a data race on the descriptor, and
// the reply could even go out through an unrelated socket that reused the number.)
TEST(ServerLifecycle, ThreadingDatagramServerCloseLetsRunningHandlersReply) {
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  ThreadingUDPServer server(test::loopback4(),
                            handler<DatagramRequestHandler>([&](DatagramRequestHandler& self) {
                              started = true;
                              eventually([&] { return release.load(); });
                              self.wfile.write(self.rfile.read());
                            }));
  Socket client(AF_INET, SOCK_DGRAM);
  client.sendto("late reply\n", server.server_address);
  {
    ServingThread serving(server);
    ASSERT_TRUE(eventually([&] { return started.load(); }));
  }  // the loop has ended; the handler still runs
  const int fd = server.fileno();
  std::thread closer([&] { server.server_close(); });
  // A server_close() that closes before joining does so at once; give it the chance (with the
  // right order the socket stays open until the handler is released, and this just times out).
  eventually([&] { return ::fcntl(fd, F_GETFD) == -1; }, 200ms);
  release = true;
  closer.join();
  client.settimeout(5s);
  std::string reply(64, '\0');
  std::error_code ec;
  reply.resize(client.recv_into(reply, ec));
  EXPECT_EQ(reply, "late reply\n") << ec.message();
  EXPECT_EQ(server.fileno(), -1);
}

// The backlog: 100 clients connect at once to a synchronous server that takes ~5 ms a request.
// With Python's old request_queue_size = 5 many would be refused or delayed; with SOMAXCONN all
// are queued and answered.
TEST(ServerLifecycle, BurstOfConnectsIsQueuedAndAnswered) {
  TCPServer server(test::loopback4(), handler<StreamRequestHandler>([](StreamRequestHandler& self) {
                     const std::string line = self.rfile.readline();
                     std::this_thread::sleep_for(5ms);  // the work, not a synchronisation
                     self.wfile.write(line);
                   }));
  ServingThread serving(server);
  std::vector<Socket> clients;
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    Socket client(AF_INET, SOCK_STREAM);
    client.setblocking(false);
    const int rc = client.connect_ex(server.server_address);
    refused += rc != 0 && rc != EINPROGRESS;
    client.settimeout(30s);
    clients.push_back(std::move(client));
  }
  EXPECT_EQ(refused, 0);
  for (std::size_t i = 0; i < clients.size(); ++i) clients[i].sendall(std::to_string(i) + "\n");
  for (std::size_t i = 0; i < clients.size(); ++i) {
    std::string reply;
    while (reply.find('\n') == std::string::npos) {
      const std::string chunk = clients[i].recv(64);
      if (chunk.empty()) break;
      reply += chunk;
    }
    EXPECT_EQ(reply, std::to_string(i) + "\n");
  }
}

TEST(UnixSocketFile, StaleFileIsRemovedAtBind) {
  TempDir dir;
  const Address address = Address::unix_path(dir.path("stale.sock"));
  Socket(AF_UNIX, SOCK_STREAM).bind(address);  // bound, never listened, closed: stale
  ASSERT_EQ(::access(address.path().c_str(), F_OK), 0);
  UnixStreamServer server(address, echo());
  ServingThread serving(server);
  EXPECT_EQ(exchange(address), "ping\n");
}

TEST(UnixSocketFile, FileThatIsNotASocketIsNeverRemoved) {
  TempDir dir;
  const std::string path = dir.path("data.txt");
  ::close(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  EXPECT_TRUE(test::throws_code<SocketError>(
      [&] { UnixStreamServer s(Address::unix_path(path), echo()); }, std::errc::address_in_use));
  EXPECT_EQ(::access(path.c_str(), F_OK), 0);
}

TEST(UnixSocketFile, LiveServersPathIsAddressInUse) {
  TempDir dir;
  const Address address = Address::unix_path(dir.path("live.sock"));
  UnixStreamServer first(address, echo());
  ServingThread serving(first);
  EXPECT_TRUE(test::throws_code<SocketError>([&] { UnixStreamServer second(address, echo()); },
                                             std::errc::address_in_use));
  UnixDatagramServer live_dgram(Address::unix_path(dir.path("live.dgram")), echo());
  EXPECT_TRUE(test::throws_code<SocketError>(
      [&] { UnixDatagramServer again(live_dgram.server_address, echo()); },
      std::errc::address_in_use));
  EXPECT_EQ(exchange(address), "ping\n");  // the first server still owns its file
}

TEST(UnixSocketFile, ServerCloseRemovesOnlyItsOwnFile) {
  TempDir dir;
  const Address address = Address::unix_path(dir.path("own.sock"));
  UnixStreamServer first(address, echo());
  first.server_close();
  EXPECT_NE(::access(address.path().c_str(), F_OK), 0);

  UnixStreamServer replaced(address, echo());
  ASSERT_EQ(::unlink(address.path().c_str()), 0);  // someone removed it and a new server bound
  UnixStreamServer current(address, echo());
  replaced.server_close();
  EXPECT_EQ(::access(address.path().c_str(), F_OK), 0) << "removed another server's file";
}

TEST(UnixSocketFile, AbstractAddressNeedsNoFile) {
  UnixStreamServer server(Address::abstract(test::unique_abstract_name()), echo());
  EXPECT_TRUE(server.server_address.is_abstract());
  ServingThread serving(server);
  EXPECT_EQ(exchange(server.server_address), "ping\n");
}

TEST(ServerAttributes, AllowReusePortLetsTwoServersShareAPort) {
  TCPServer first(test::loopback4(), echo(), false);
  first.allow_reuse_port = true;
  first.bind_and_activate();
  const Address shared = first.server_address;
  TCPServer second(shared, echo(), false);
  second.allow_reuse_port = true;
  second.bind_and_activate();
  EXPECT_EQ(second.server_address, shared);
  EXPECT_TRUE(test::throws_code<SocketError>([&] { TCPServer third(shared, echo()); },
                                             std::errc::address_in_use));
  // Not applied to Unix sockets (Linux 6.12.9+ refuses it there), so no error either.
  TempDir dir;
  UnixStreamServer unix_server(Address::unix_path(dir.path("u.sock")), echo(), false);
  unix_server.allow_reuse_port = true;
  EXPECT_NO_THROW(unix_server.bind_and_activate());
}

// A C++ constructor cannot reach an override, so make_server<T>() binds after construction.
TEST(ServerAttributes, MakeServerRunsOverriddenBindAndActivate) {
  struct AuditedServer : TCPServer {
    using TCPServer::TCPServer;
    void server_bind() override {
      calls += "bind ";
      TCPServer::server_bind();
    }
    void server_activate() override {
      calls += "activate";
      TCPServer::server_activate();
    }
    std::string calls;
  };
  auto server = make_server<AuditedServer>(test::loopback4(), echo());
  EXPECT_EQ(server->calls, "bind activate");
  EXPECT_NE(server->server_address.port(), 0);
  ServingThread serving(*server);
  EXPECT_EQ(exchange(server->server_address), "ping\n");
}

}  // namespace
}  // namespace sockserv
