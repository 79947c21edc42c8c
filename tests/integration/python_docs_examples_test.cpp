// SPDX-License-Identifier: MIT
// Runs the socketserver docs' example programs (examples/python_docs) as real processes and
// compares their output with the docs' transcripts (seed 003, "例" section):
//
//   server:                       client:
//     127.0.0.1 wrote:              $ TCPClient.py hello world with TCP
//     hello world with TCP          Sent:     hello world with TCP
//     127.0.0.1 wrote:              Received: HELLO WORLD WITH TCP
//     python is nice                $ TCPClient.py python is nice ...
//
// and checks that our programs interoperate with the seed's own Python programs (ported to
// Python 3 in seed_py/): C++ client with Python server and Python client with C++ server, TCP and
// UDP. The Python-with-Python row is the reference: it shows the transcript is Python's own.
//
// Program paths come from the build (tests/CMakeLists.txt). Servers bind port 0 and announce
// "listening on ADDRESS" on stderr; each is killed (by its PID) at the end of its test.
#include "support/test_support.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string python_script(const std::string& name) { return std::string(SEED_PY_DIR) + "/" + name; }

// A server program on port 0: waits for its "listening on HOST:PORT" line on stderr.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& argv) : process_(argv) {
    const auto deadline = Clock::now() + 20s;
    while (process_.err().find('\n') == std::string::npos && Clock::now() < deadline) {
      // Pumps stdout and stderr; the server prints nothing on stdout before its first client.
      if (const auto line = process_.read_line(20ms)) unexpected_ += *line + "\n";
      if (process_.err().empty()) std::this_thread::sleep_for(1ms);
    }
    const std::string& err = process_.err();
    const auto colon = err.rfind(':', err.find('\n'));
    if (err.starts_with("listening on ") && colon != std::string::npos) {
      port_ = std::stoi(err.substr(colon + 1));
    }
  }
  ~ServerProcess() {
    process_.kill(SIGTERM);
    process_.wait(10s);  // SIGKILL after that
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // 0 when the server never announced itself (then err() says why).
  int port() const { return port_; }
  const std::string& err() const { return process_.err(); }
  const std::string& unexpected_output() const { return unexpected_; }
  std::optional<std::string> read_line() { return process_.read_line(10s); }

 private:
  test::Process process_;
  std::string unexpected_;
  int port_ = 0;
};

struct Pairing {
  const char* name;
  std::vector<std::string> server;  // argv without HOST PORT
  std::vector<std::string> client;  // argv without --port PORT WORDS
  bool needs_python = false;
};

std::ostream& operator<<(std::ostream& out, const Pairing& p) { return out << p.name; }

std::vector<std::string> with(std::vector<std::string> argv, std::vector<std::string> more) {
  argv.insert(argv.end(), more.begin(), more.end());
  return argv;
}

const std::vector<std::string> py_tcp_server = {"python3", python_script("TCPServer.py")};
const std::vector<std::string> py_tcp_client = {"python3", python_script("TCPClient.py")};
const std::vector<std::string> py_udp_server = {"python3", python_script("UDPServer.py")};
const std::vector<std::string> py_udp_client = {"python3", python_script("UDPClient.py")};

const Pairing pairings[] = {
    {"TcpServerWithTcpClient", {TCP_SERVER_EXE}, {TCP_CLIENT_EXE}},
    {"TcpServerStreamsWithTcpClient", {TCP_SERVER_STREAMS_EXE}, {TCP_CLIENT_EXE}},
    {"UdpServerWithUdpClient", {UDP_SERVER_EXE}, {UDP_CLIENT_EXE}},
    {"PythonTcpServerWithPythonTcpClient", py_tcp_server, py_tcp_client, true},
    {"PythonTcpServerWithTcpClient", py_tcp_server, {TCP_CLIENT_EXE}, true},
    {"TcpServerWithPythonTcpClient", {TCP_SERVER_EXE}, py_tcp_client, true},
    {"TcpServerStreamsWithPythonTcpClient", {TCP_SERVER_STREAMS_EXE}, py_tcp_client, true},
    {"PythonUdpServerWithPythonUdpClient", py_udp_server, py_udp_client, true},
    {"PythonUdpServerWithUdpClient", py_udp_server, {UDP_CLIENT_EXE}, true},
    {"UdpServerWithPythonUdpClient", {UDP_SERVER_EXE}, py_udp_client, true},
};

class SeedTranscriptTest : public testing::TestWithParam<Pairing> {};

// The seed's two client runs, and what the server prints for them.
TEST_P(SeedTranscriptTest, ServerAndClientPrintTheSeedTranscript) {
  const Pairing& p = GetParam();
  if (p.needs_python && !test::have_program("python3")) GTEST_SKIP() << "no python3";
  ServerProcess server(with(p.server, {"localhost", "0"}));
  ASSERT_NE(server.port(), 0) << "no 'listening on' line; stderr: " << server.err();
  const std::string port = std::to_string(server.port());
  for (const std::string message : {"hello world with TCP", "python is nice"}) {
    std::vector<std::string> client = with(p.client, {"--port", port});
    for (std::size_t start = 0; start <= message.size();) {
      const auto end = std::min(message.find(' ', start), message.size());
      client.push_back(message.substr(start, end - start));  // one argv word each, as in a shell
      start = end + 1;
    }
    const auto result = test::run_command(client, {}, 20s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    std::string upper = message;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(result.out, "Sent:     " + message + "\nReceived: " + upper + "\n");
    EXPECT_EQ(server.read_line(), "127.0.0.1 wrote:");
    EXPECT_EQ(server.read_line(), message);
  }
  EXPECT_EQ(server.unexpected_output(), "");
}

std::string pairing_name(const testing::TestParamInfo<Pairing>& param) { return param.param.name; }

INSTANTIATE_TEST_SUITE_P(PythonDocs, SeedTranscriptTest, testing::ValuesIn(pairings), pairing_name);

TEST(PythonDocsExamples, ThreadedTcpServerPrintsTheSeedTranscript) {
  const auto result = test::run_command({THREADED_TCP_SERVER_EXE}, {}, 20s);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "Server loop running in thread: Thread-1\n"
            "Received: Thread-2: Hello World 1\n"
            "Received: Thread-3: Hello World 2\n"
            "Received: Thread-4: Hello World 3\n");
  EXPECT_TRUE(result.err.starts_with("listening on 127.0.0.1:")) << result.err;
}

// The ForkingMixIn twin: the same transcript with a child's pid where the thread name was; each
// request has its own child, none of them the server process itself.
TEST(PythonDocsExamples, ForkedTcpServerAnswersFromThreeChildren) {
  test::Process program({FORKED_TCP_SERVER_EXE});
  EXPECT_EQ(program.read_line(), "Server loop running in thread: Thread-1");
  const std::regex received(R"(Received: pid (\d+): Hello World (\d))");
  std::set<std::string> pids;
  for (int i = 1; i <= 3; ++i) {
    const auto line = program.read_line();
    ASSERT_TRUE(line.has_value());
    std::smatch m;
    ASSERT_TRUE(std::regex_match(*line, m, received)) << *line;
    EXPECT_EQ(m[2], std::to_string(i));
    EXPECT_NE(m[1], std::to_string(program.pid()));
    pids.insert(m[1]);
  }
  EXPECT_EQ(pids.size(), 3u);
  EXPECT_EQ(program.read_line(), std::nullopt);  // end of output
  EXPECT_EQ(program.wait(20s), 0) << program.err();
}

TEST(PythonDocsExamples, ClientReportsAnErrorWhenNoServerListens) {
  // A port that was just free: bind port 0, read it back, close.
  std::uint16_t port = 0;
  {
    Socket probe(AF_INET, SOCK_STREAM);
    probe.bind(test::loopback4());
    port = probe.getsockname().port();
  }
  const auto result =
      test::run_command({TCP_CLIENT_EXE, "--port", std::to_string(port), "hello"}, {}, 20s);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find("Connection refused"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace sockserv
