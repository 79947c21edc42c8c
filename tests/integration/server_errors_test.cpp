// SPDX-License-Identifier: MIT
// Errors inside servers: a port of CPython's test_socketserver.py ErrorHandlerTest and
// SocketWriterTest.test_write, plus the datagram cases ANCHORS.md section 2.3 adds (truncation is
// reported, an empty reply is not sent) and a forked child that dies by a signal.
#include <sockserv/error.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>
#include <sockserv/socket_file.hpp>

#include "support/test_support.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::TempDir;

using test::eventually;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// One write(2) with O_APPEND: lines from the server, its threads and its children never mix.
void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const std::string text = line + "\n";
  [[maybe_unused]] const auto n = ::write(fd, text.data(), text.size());
  ::close(fd);
}

// Sends `line`, returns everything received until the server closes.
std::string exchange(const Address& address, std::string_view line) {
  Socket sock(address.family(), SOCK_STREAM);
  sock.settimeout(10s);
  sock.connect(address);
  sock.sendall(line);
  std::string reply;
  std::error_code ec;
  char chunk[4096];
  while (const auto n = sock.recv_into(chunk, ec)) reply.append(chunk, n);
  return reply;
}

// Sends fd 2 to a file until restore() or destruction.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    std::cerr.flush();
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  void restore() {
    if (saved_ < 0) return;
    std::cerr.flush();
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::string text() const { return read_file(path_); }

 private:
  std::string path_;
  int saved_ = -1;
};

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

// --- ErrorHandlerTest ----------------------------------------------------------------------------

// Logs to a file (shared with forked children), as Python's ErrorHandlerTest does.
template <class Base>
class LoggingServer : public Base {
 public:
  LoggingServer(const Address& address, std::string log)
      : Base(address, make_handler(log)), log_(std::move(log)) {}
  void handle_error(Request&, const Address&, std::exception_ptr) override {
    append_line(log_, "Error handled");
  }

 private:
  static RequestHandlerFactory make_handler(std::string log) {
    return handler<StreamRequestHandler>([log](StreamRequestHandler& self) {
      append_line(log, "Handler called");
      const std::string line = self.rfile.readline();
      if (line == "raise\n") throw std::runtime_error("test error");
      if (line == "throw 42\n") throw 42;
      self.wfile.write(line);
    });
  }
  std::string log_;
};

template <class Server>
class ErrorHandlerTest : public testing::Test {};

struct ModeName {
  template <class Server>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<Server, ThreadingTCPServer>) return "ThreadingTCPServer";
    if constexpr (std::is_same_v<Server, ForkingTCPServer>) return "ForkingTCPServer";
    return "TCPServer";
  }
};

using Modes = testing::Types<TCPServer, ThreadingTCPServer, ForkingTCPServer>;
TYPED_TEST_SUITE(ErrorHandlerTest, Modes, ModeName);

// Python's test_sync_handled / test_threading_handled / test_forking_handled: handle_error runs
// once (in the thread or child that failed) and the next client is served.
TYPED_TEST(ErrorHandlerTest, HandlerErrorReachesHandleErrorOnceAndServingGoesOn) {
  TempDir dir;
  const std::string log = dir.path("log");
  LoggingServer<TypeParam> server(test::loopback4(), log);
  {
    ServingThread serving(server);
    EXPECT_EQ(exchange(server.server_address, "raise\n"), "");
    EXPECT_EQ(exchange(server.server_address, "ok\n"), "ok\n");
  }
  server.server_close();
  EXPECT_EQ(read_file(log), "Handler called\nError handled\nHandler called\n");
}

// Python's test_sync_not_handled (SystemExit): what is not a std::exception leaves
// handle_request() after the request is shut down, and handle_error is not called.
TEST(ServerErrors, NonStdExceptionPropagatesFromSyncHandleRequest) {
  TempDir dir;
  const std::string log = dir.path("log");
  LoggingServer<TCPServer> server(test::loopback4(), log);
  Socket client = create_connection(server.server_address, 10s);
  client.sendall("throw 42\n");
  EXPECT_THROW(server.handle_request(), int);
  EXPECT_EQ(read_file(log), "Handler called\n");
  EXPECT_EQ(client.recv(16), "");  // shutdown_request still ran
}

TEST(ServerErrors, DefaultHandleErrorPrintsBannerWithClientAddress) {
  TempDir dir;
  TCPServer server(test::loopback4(), [](Request&, const Address&, BaseServer&) {
    throw std::runtime_error("boom in handler");
  });
  Socket client = create_connection(server.server_address, 10s);
  {
    StderrCapture capture(dir.path("stderr"));
    server.handle_request();
    capture.restore();
    const std::string text = capture.text();
    EXPECT_NE(text.find("Exception occurred during processing of request from " +
                        client.getsockname().to_string()),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("boom in handler"), std::string::npos) << text;
    EXPECT_NE(text.find(std::string(40, '-')), std::string::npos) << text;
  }
  EXPECT_EQ(client.recv(16), "");
}

// --- SocketWriterTest.test_write
// -------------------------------------------------------------------

std::atomic<bool> interrupted{false};
extern "C" void on_sigusr1(int) { interrupted = true; }

// wfile.write() sends at once (the client reads the line before it answers), and a write far
// larger than the socket buffers is whole even while signals keep interrupting send().
TEST(SocketWriter, WriteIsImmediateAndCompleteUnderSignals) {
  constexpr std::size_t big = 16 << 20;  // Python's SOCK_MAX_SIZE
  struct sigaction action {
  }, original{};
  action.sa_handler = on_sigusr1;  // no SA_RESTART: send() really fails with EINTR
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(::sigaction(SIGUSR1, &action, &original), 0);
  interrupted = false;

  std::size_t sent1 = 0, sent2 = 0;
  std::string received;
  std::atomic<pthread_t> handler_thread{};
  std::atomic<bool> handler_ready{false};
  TCPServer server(test::loopback4(), handler<StreamRequestHandler>([&](StreamRequestHandler& s) {
                     sent1 = s.wfile.write("write data\n");  // no flush() needed
                     received = s.rfile.readline();
                     handler_thread = ::pthread_self();
                     handler_ready = true;
                     sent2 = s.wfile.write(std::string(big, '\0'));
                   }));
  std::string response1;
  std::size_t received2 = 0;
  bool signalled = false;
  std::thread client([&] {
    Socket sock = create_connection(server.server_address, 30s);
    SocketFile reader(sock);
    response1 = reader.readline();
    sock.sendall("client response\n");
    reader.read(100);
    // The handler should now be blocked in send(). Keep signalling until the handler has run
    // at least once, as a signal may come at an inconvenient moment (Python does the same).
    eventually([&] { return handler_ready.load(); });
    const auto deadline = Clock::now() + 10s;
    while (!interrupted && handler_ready && Clock::now() < deadline) {
      ::pthread_kill(handler_thread, SIGUSR1);
      eventually([] { return interrupted.load(); }, 100ms);
    }
    signalled = interrupted;
    received2 = reader.read_to_eof(big).size();
  });
  server.handle_request();
  client.join();
  ::sigaction(SIGUSR1, &original, nullptr);

  EXPECT_TRUE(signalled);
  EXPECT_EQ(sent1, 11u);
  EXPECT_EQ(response1, "write data\n");
  EXPECT_EQ(received, "client response\n");
  EXPECT_EQ(sent2, big);
  EXPECT_EQ(received2, big - 100);
}

// --- Datagrams -----------------------------------------------------------------------------------

TEST(DatagramErrors, OversizedDatagramIsReportedAndNotHandled) {
  TempDir dir;
  std::atomic<int> handled{0};
  UDPServer server(test::loopback4(),
                   handler<DatagramRequestHandler>([&handled](DatagramRequestHandler& self) {
                     ++handled;
                     self.wfile.write(self.rfile.read());
                   }));
  server.max_packet_size = 100;
  Socket client(AF_INET, SOCK_DGRAM);
  client.settimeout(10s);
  client.sendto(std::string(200, 'x'), server.server_address);
  {
    StderrCapture capture(dir.path("stderr"));
    server.handle_request();
    capture.restore();
    const std::string text = capture.text();
    EXPECT_NE(text.find("datagram truncated"), std::string::npos) << text;
    EXPECT_NE(text.find("max_packet_size"), std::string::npos) << text;
  }
  EXPECT_EQ(handled, 0);
  const std::string fits(100, 'y');
  client.sendto(fits, server.server_address);
  server.handle_request();
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(client.recv(200), fits);
}

// Python's DatagramRequestHandler sends an empty datagram even when the handler wrote nothing;
// ours sends nothing.
TEST(DatagramErrors, HandlerThatWritesNothingSendsNoReply) {
  std::atomic<int> handled{0};
  UDPServer server(test::loopback4(),
                   handler<DatagramRequestHandler>([&handled](DatagramRequestHandler& self) {
                     ++handled;
                     const std::string line = self.rfile.readline();
                     if (line == "echo\n") self.wfile.write(line);
                   }));
  Socket client(AF_INET, SOCK_DGRAM);
  client.sendto("quiet\n", server.server_address);
  server.handle_request();
  EXPECT_EQ(handled, 1);
  client.settimeout(200ms);
  EXPECT_TRUE(test::throws_code<TimeoutError>([&] { client.recv(64); }, std::errc::timed_out));
  client.sendto("echo\n", server.server_address);
  server.handle_request();
  EXPECT_EQ(client.recv(64), "echo\n");  // the control: a reply does come back
}

// --- Forking -------------------------------------------------------------------------------------

TEST(ForkingErrors, ChildKilledBySignalIsReapedAndLogged) {
  TempDir dir;
  ForkingTCPServer server(test::loopback4(),
                          handler<StreamRequestHandler>([](StreamRequestHandler& self) {
                            if (self.rfile.readline() == "die\n") ::raise(SIGKILL);
                            self.wfile.write("alive\n");
                          }));
  StderrCapture capture(dir.path("stderr"));
  {
    ServingThread serving(server);
    EXPECT_EQ(exchange(server.server_address, "die\n"), "");
    EXPECT_TRUE(
        eventually([&] { return capture.text().find("killed by signal 9") != std::string::npos; }));
    EXPECT_EQ(exchange(server.server_address, "live\n"), "alive\n");
  }
  server.server_close();
  capture.restore();
  EXPECT_NE(capture.text().find("killed by signal 9"), std::string::npos) << capture.text();
  EXPECT_TRUE(server.active_children.empty());
  int status = 0;
  errno = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1);  // no zombie left
  EXPECT_EQ(errno, ECHILD);
}

// A forked child's shutdown() cannot stop the parent's loop (the flag lives in the child's
// memory), but it does write the wake-up eventfd both processes share. The parent must not then
// spin on a wake-up nobody drains.
TEST(ForkingErrors, ShutdownInForkedHandlerDoesNotMakeTheParentSpin) {
  struct Server : ForkingTCPServer {
    using ForkingTCPServer::ForkingTCPServer;
    void service_actions() override {
      ++loops;
      ForkingTCPServer::service_actions();
    }
    std::atomic<long> loops{0};
  };
  Server server(test::loopback4(), handler<StreamRequestHandler>([](StreamRequestHandler& self) {
                  self.server.shutdown();
                  self.wfile.write("done\n");
                }));
  std::thread serving([&] { server.serve_forever(1s); });
  EXPECT_EQ(exchange(server.server_address, "x\n"), "done\n");
  const long before = server.loops;
  std::this_thread::sleep_for(200ms);  // a measurement window, not a synchronisation
  EXPECT_LT(server.loops - before, 50) << "the loop spins";
  server.shutdown();
  serving.join();
}

}  // namespace
}  // namespace sockserv
