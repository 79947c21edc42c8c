// SPDX-License-Identifier: MIT
// `sockserv serve --mode async` as a real process: each built-in handler (upper, echo, discard,
// daytime) over TCP with two event loops (sharing a socket, and each with its own), the upper
// handler over a Unix stream socket and over UDP, with our Socket and with a Python client as
// peers; SIGTERM ends it with exit status 0.
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;

// `sockserv serve --mode async ARGS...`, started and waited for: it prints "listening on ADDRESS"
// on stdout once it serves. The destructor sends SIGTERM and expects exit status 0.
class AsyncServe {
 public:
  explicit AsyncServe(std::vector<std::string> args) : process_(command(std::move(args))) {
    const auto line = process_.read_line(20s);
    if (line && line->starts_with("listening on ")) {
      address_ = Address::parse(line->substr(13));
    } else {
      ADD_FAILURE() << "no 'listening on' line; stderr: " << process_.err();
    }
  }
  ~AsyncServe() { stop(); }
  AsyncServe(const AsyncServe&) = delete;
  AsyncServe& operator=(const AsyncServe&) = delete;

  const Address& address() const { return *address_; }
  bool started() const { return address_.has_value(); }
  // SIGTERM, then the exit status (nullopt: it had to be killed).
  std::optional<int> stop() {
    if (stopped_) return status_;
    stopped_ = true;
    terminate();
    process_.read_to_eof(10s);
    status_ = process_.wait(10s);
    return status_;
  }
  const std::string& err() const { return process_.err(); }
  // Reads the server's output until its log (stderr) holds `text`.
  bool wait_for_log(std::string_view text) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (process_.err().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      (void)process_.read_line(50ms);
    }
    return true;
  }
  // SIGTERM without waiting (stop() then only waits: a second signal would force the exit).
  void terminate() {
    if (!std::exchange(signalled_, true)) process_.kill(SIGTERM);
  }

 private:
  static std::vector<std::string> command(std::vector<std::string> args) {
    // A short grace: connections still open at SIGTERM are not kept for the default 10 s.
    std::vector<std::string> argv{SOCKSERV_EXE, "serve", "--mode", "async", "--threads", "2"};
    if (std::find(args.begin(), args.end(), "--grace") == args.end()) {
      argv.insert(argv.end(), {"--grace", "0.5"});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  test::Process process_;
  std::optional<Address> address_;
  bool stopped_ = false;
  bool signalled_ = false;
  std::optional<int> status_;
};

using test::connect_to;

std::string recv_to_eof(Socket& sock) {
  std::string all;
  for (std::string s; !(s = sock.recv(4096)).empty();) all += s;
  return all;
}

TEST(AsyncServeCommandTest, UpperHandlerOverTcpAnswersEachLineThenExitsCleanlyOnSigterm) {
  AsyncServe serve({"--tcp", "127.0.0.1:0", "--handler", "upper"});
  ASSERT_TRUE(serve.started());
  auto sock = connect_to(serve.address());
  sock.sendall("hello world\nsecond line\n");
  EXPECT_EQ(sock.recv_exact(24), "HELLO WORLD\nSECOND LINE\n");
  sock.shutdown(SHUT_WR);
  EXPECT_EQ(recv_to_eof(sock), "");
  EXPECT_EQ(serve.stop(), 0) << serve.err();
}

TEST(AsyncServeCommandTest, EchoHandlerReturnsEveryByte) {
  AsyncServe serve({"--tcp", "127.0.0.1:0", "--handler", "echo"});
  ASSERT_TRUE(serve.started());
  std::string data;
  for (int i = 0; i < 20000; ++i) data += static_cast<char>(i % 256);
  auto sock = connect_to(serve.address());
  sock.sendall(data);
  sock.shutdown(SHUT_WR);
  EXPECT_EQ(recv_to_eof(sock), data);
  EXPECT_EQ(serve.stop(), 0) << serve.err();
}

TEST(AsyncServeCommandTest, EveryBackendEchoesEveryByte) {
  // --backend (issue 10): the io_uring one receives into its buffer ring and sends by
  // completion; a stream of many sizes must come back whole from each.
  for (const std::string backend : {"epoll", "poll", "io_uring"}) {
    AsyncServe serve({"--tcp", "127.0.0.1:0", "--handler", "echo", "--backend", backend});
    ASSERT_TRUE(serve.started()) << backend;
    std::string data;
    for (int i = 0; i < 300000; ++i) data += static_cast<char>((i * 7) % 256);
    auto sock = connect_to(serve.address());
    std::thread writer([&] {  // while the echo is read: neither side's buffer can fill up
      sock.sendall(data);
      sock.shutdown(SHUT_WR);
    });
    const std::string echoed = recv_to_eof(sock);
    writer.join();
    EXPECT_TRUE(echoed == data) << backend;
    EXPECT_EQ(serve.stop(), 0) << backend << ": " << serve.err();
  }
}

TEST(AsyncServeCommandTest, BackendNeedsTheAsyncMode) {
  const auto result = test::run_command(
      {SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--mode", "threading", "--backend", "poll"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(test::contains(result.err, "--backend poll: only the event loops have a backend"))
      << result.err;
}

TEST(AsyncServeCommandTest, DiscardHandlerReadsEverythingAndAnswersNothing) {
  AsyncServe serve({"--tcp", "127.0.0.1:0", "--handler", "discard"});
  ASSERT_TRUE(serve.started());
  auto sock = connect_to(serve.address());
  sock.settimeout(3s);
  sock.sendall(std::string(100000, 'x'));
  sock.shutdown(SHUT_WR);
  EXPECT_EQ(recv_to_eof(sock), "");
  EXPECT_EQ(serve.stop(), 0) << serve.err();
}

TEST(AsyncServeCommandTest, DaytimeHandlerSendsTheDateAndCloses) {
  AsyncServe serve({"--tcp", "127.0.0.1:0", "--handler", "daytime"});
  ASSERT_TRUE(serve.started());
  auto sock = connect_to(serve.address());
  const std::string text = recv_to_eof(sock);
  // "Weekday, Month DD, YYYY HH:MM:SS-UTC\r\n" (RFC 867 leaves the format open).
  EXPECT_TRUE(std::regex_match(
      text, std::regex(R"([A-Za-z]+, [A-Za-z]+ \d\d, \d{4} \d\d:\d\d:\d\d.*\r\n)")))
      << text;
  EXPECT_EQ(serve.stop(), 0) << serve.err();
}

TEST(AsyncServeCommandTest, UpperHandlerWithAPythonClient) {
  if (!test::have_program(test::python3())) GTEST_SKIP() << "no python3";
  AsyncServe serve({"--tcp", "127.0.0.1:0", "--handler", "upper"});
  ASSERT_TRUE(serve.started());
  const std::string script =
      "import socket, sys\n"
      "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n"
      "s.sendall(b'from python\\n')\n"
      "f = s.makefile('rb')\n"
      "sys.stdout.write(f.readline().decode())\n";
  const auto result = test::run_command(
      {test::python3(), "-c", script, std::to_string(serve.address().port())}, {}, 20s);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "FROM PYTHON\n");
  EXPECT_EQ(serve.stop(), 0) << serve.err();
}

TEST(AsyncServeCommandTest, UpperHandlerOverAUnixStreamSocketRemovesItsFileOnExit) {
  test::TempDir dir;
  const std::string path = dir.path("serve.sock");
  AsyncServe serve({"--unix", path, "--handler", "upper"});
  ASSERT_TRUE(serve.started());
  EXPECT_EQ(serve.address(), Address::unix_path(path));
  auto sock = connect_to(serve.address());
  sock.sendall("over unix\n");
  EXPECT_EQ(sock.recv_exact(10), "OVER UNIX\n");
  sock.close();
  EXPECT_EQ(serve.stop(), 0) << serve.err();
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0) << "the socket file is still there";
}

TEST(AsyncServeCommandTest, UpperHandlerOverUdpRepliesToEachDatagram) {
  AsyncServe serve({"--udp", "127.0.0.1:0", "--handler", "upper"});
  ASSERT_TRUE(serve.started());
  Socket client(AF_INET, SOCK_DGRAM);
  client.settimeout(10s);
  for (const std::string word : {"one", "two", "three"}) {
    client.sendto(word, serve.address());
    std::string expected = word;
    for (auto& c : expected) c = static_cast<char>(c - 'a' + 'A');
    EXPECT_EQ(client.recvfrom(100).first, expected);
  }
  EXPECT_EQ(serve.stop(), 0) << serve.err();
}

TEST(AsyncServeCommandTest, SigtermWhileClientsAreConnectedStillExitsWithZero) {
  AsyncServe serve({"--tcp", "127.0.0.1:0", "--handler", "echo"});
  ASSERT_TRUE(serve.started());
  std::vector<Socket> idle;
  for (int i = 0; i < 5; ++i) idle.push_back(connect_to(serve.address()));
  idle[0].sendall("x");
  EXPECT_EQ(idle[0].recv(1), "x");  // being served
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(serve.stop(), 0) << serve.err();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the 0.5 s grace was not honoured";
  for (auto& s : idle) {
    try {
      EXPECT_EQ(s.recv(10), "");  // their connections were closed at shutdown
    } catch (const ConnectionError&) {
    }
  }
}

// Both loops get a socket of their own; every client is served (whichever socket the kernel
// picks), and once SIGTERM starts the drain no socket takes new connections any more: a connect
// is refused, not queued in a backlog nobody accepts from.
TEST(AsyncServeCommandTest, ListenerPerLoopServesEveryClientAndStopsListeningAtTheDrain) {
  AsyncServe serve(
      {"--tcp", "127.0.0.1:0", "--handler", "upper", "--listener-per-loop", "--grace", "10"});
  ASSERT_TRUE(serve.started());
  std::vector<Socket> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(connect_to(serve.address()));
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const std::string n = std::to_string(i);
    clients[i].sendall("client " + n + "\n");
    EXPECT_EQ(clients[i].recv_exact(8 + n.size()), "CLIENT " + n + "\n");
  }
  serve.terminate();  // the connected clients keep the drain going (grace 10 s)
  ASSERT_TRUE(serve.wait_for_log("shutting down")) << serve.err();
  std::this_thread::sleep_for(200ms);  // every loop has begun its drain by now
  int taken = 0;
  for (int i = 0; i < 20; ++i) {  // 20 hashes reach every socket
    try {
      Socket late(AF_INET, SOCK_STREAM);
      late.settimeout(2s);
      late.connect(serve.address());
      ++taken;
    } catch (const ConnectionError&) {  // refused
    }
  }
  EXPECT_EQ(taken, 0) << "a loop's own socket still queued connections during the drain";
  clients.clear();  // the drain ends with the last connection
  EXPECT_EQ(serve.stop(), 0) << serve.err();
}

}  // namespace
}  // namespace sockserv
