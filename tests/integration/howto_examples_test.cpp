// SPDX-License-Identifier: MIT
// The HOWTO example programs (examples/howto) run as real processes. The self-contained demos
// must exit 0 and print their exchange; the servers are started on port 0, found through their
// "listening on ADDRESS" line, talked to by our Socket, by Python's socket module and by nc, and
// stopped with SIGTERM to the PID the test started.
#include "support/test_support.hpp"

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::run_command;

// Reads until the peer closes (each recv bounded by the socket's timeout).
std::string recv_to_eof(Socket& sock) {
  std::string all;
  for (std::string chunk = sock.recv(65536); !chunk.empty(); chunk = sock.recv(65536)) {
    all += chunk;
  }
  return all;
}

// One request to a server that closes after its reply (or echoes until our EOF).
std::string exchange(const Address& server, const std::string& request) {
  Socket s = create_connection(server, 10s);
  s.sendall(request);
  s.shutdown(SHUT_WR);
  return recv_to_eof(s);
}

// Python's socket module as the client: connect, send argv[2] + "\n", shut down the sending
// side, print the reply read to EOF.
const char* const python_client = R"(
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(sys.argv[2].encode() + b"\n")
    s.shutdown(socket.SHUT_WR)
    chunks = []
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        chunks.append(chunk)
sys.stdout.write(b"".join(chunks).decode())
)";

// ---- Self-contained demos ----------------------------------------------------------------------

testing::AssertionResult prints(const test::CommandResult& r, const std::string& text) {
  if (r.timed_out) return testing::AssertionFailure() << "timed out; stderr: " << r.err;
  if (r.exit_code != 0) {
    return testing::AssertionFailure() << "exit code " << r.exit_code << "; stderr: " << r.err;
  }
  if (r.out.find(text) == std::string::npos) {
    return testing::AssertionFailure() << "no \"" << text << "\" in output:\n" << r.out;
  }
  return testing::AssertionSuccess();
}

TEST(HowtoExamplesTest, MysocketExchangesFixedLengthMessagesAndDetectsBrokenConnection) {
  const auto r = run_command({HOWTO_MYSOCKET});
  EXPECT_TRUE(prints(r, "server: received [hello                           ]"));
  EXPECT_TRUE(prints(r, "client: got reply [ack third message               ]"));
  EXPECT_TRUE(prints(r, "server: socket connection broken"));
}

TEST(HowtoExamplesTest, LengthPrefixedSplitsBackToBackMessages) {
  const auto r = run_command({HOWTO_LENGTH_PREFIXED});
  EXPECT_TRUE(prints(r, "wire form of the first message: 00005hello"));
  EXPECT_TRUE(prints(r, "server: message of 60000 bytes"));
  EXPECT_TRUE(prints(r, "client: reply 2: got 0 bytes"));
  EXPECT_TRUE(prints(r, "client: reply 4: got 7 bytes"));
  EXPECT_TRUE(prints(r, "malformed header"));
}

TEST(HowtoExamplesTest, DelimitedFindsMessagesAcrossChunks) {
  const auto r = run_command({HOWTO_DELIMITED});
  EXPECT_TRUE(prints(r, "server: message 3: 'MAIL FROM:<howto@example.org>'"));
  EXPECT_TRUE(prints(r, "server: message 4: 'QUIT'"));
  EXPECT_TRUE(prints(r, "client: reply 'OK 4'"));
  EXPECT_TRUE(prints(r, "server: end of stream after 4 messages"));
  EXPECT_TRUE(prints(r, "refused to encode"));
}

TEST(HowtoExamplesTest, BinaryMessageTravelsInNetworkByteOrder) {
  const auto r = run_command({HOWTO_BINARY_MESSAGE});
  EXPECT_TRUE(prints(r, "1 in network order: 00 01"));
  EXPECT_TRUE(prints(r, "wire (18 bytes): 00 07 00 01 e2 40 ff ff cf 2c"));
  EXPECT_TRUE(prints(r, "millicelsius=-12500"));
  EXPECT_TRUE(prints(r, "records match"));
}

TEST(HowtoExamplesTest, HalfCloseEndsRequestWithShutdown) {
  const auto r = run_command({HOWTO_HALF_CLOSE});
  EXPECT_TRUE(prints(r, "server: EOF after 40 bytes: the request is complete"));
  EXPECT_TRUE(prints(r, "You asked for: GET /howto HTTP/1.0"));
}

// ---- client_socket against a server written here -----------------------------------------------

TEST(HowtoExamplesTest, ClientSocketSendsRequestAndPrintsReplyToEof) {
  Socket listener = create_server(test::loopback4());
  listener.settimeout(30s);
  std::string request;
  std::thread server([&] {
    try {
      auto [conn, peer] = listener.accept();
      conn.settimeout(30s);
      SocketFile file(conn);
      request = file.readline(1000);
      conn.sendall("first part\n");
      conn.sendall("second part\n");
    } catch (const std::exception& e) {
      request = std::string("server failed: ") + e.what();
    }
  });
  const auto r = run_command(
      {HOWTO_CLIENT_SOCKET, "127.0.0.1", std::to_string(listener.getsockname().port()), "hi"});
  server.join();
  EXPECT_EQ(request, "hi\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "first part\nsecond part\n");
}

TEST(HowtoExamplesTest, ClientSocketReportsRefusedConnection) {
  Socket holder(AF_INET, SOCK_STREAM);
  holder.bind(test::loopback4());  // bound, never listening: connections are refused
  const auto r =
      run_command({HOWTO_CLIENT_SOCKET, "127.0.0.1", std::to_string(holder.getsockname().port())});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("connect 127.0.0.1:"), std::string::npos) << r.err;
  EXPECT_EQ(run_command({HOWTO_CLIENT_SOCKET}).exit_code, 2);  // usage
}

// ---- The servers -------------------------------------------------------------------------------

// Starts a server program and reads the address from its "listening on ADDRESS" line.
class ServerProgramTest : public testing::Test {
 protected:
  void start(const std::vector<std::string>& argv) {
    server_ = std::make_unique<test::Process>(argv);
    const auto line = server_->read_line(30s);
    ASSERT_TRUE(line.has_value()) << "no output; stderr: " << server_->err();
    ASSERT_TRUE(line->starts_with("listening on ")) << *line;
    address_ = Address::parse(line->substr(13));
    ASSERT_EQ(address_.host(), "127.0.0.1");
    ASSERT_NE(address_.port(), 0);
  }

  // SIGTERM to the PID we started, then reap it. A server still alive dies of that signal.
  void TearDown() override {
    if (!server_) return;
    server_->kill(SIGTERM);
    EXPECT_EQ(server_->wait(30s), -SIGTERM) << "stderr: " << server_->err();
  }

  std::string port() const { return std::to_string(address_.port()); }

  std::unique_ptr<test::Process> server_;
  Address address_;
};

bool nc_supports_half_close() {
  if (!test::have_program("nc")) return false;
  const auto help = run_command({"nc", "-h"}, {}, 10s);
  return (help.out + help.err).find("-N") != std::string::npos;  // OpenBSD netcat
}

using ServerSocketTest = ServerProgramTest;

TEST_F(ServerSocketTest, AnswersOurSocketWithUpperCasedLine) {
  ASSERT_NO_FATAL_FAILURE(start({HOWTO_SERVER_SOCKET, "--port", "0"}));
  EXPECT_EQ(exchange(address_, "hello, server\n"), "HELLO, SERVER\n");
  EXPECT_EQ(exchange(address_, "again\n"), "AGAIN\n");
}

TEST_F(ServerSocketTest, ServesEachClientInItsOwnThread) {
  ASSERT_NO_FATAL_FAILURE(start({HOWTO_SERVER_SOCKET, "127.0.0.1", "0"}));
  // A silent client does not hold up the next one: a sequential server would time out here.
  Socket idle = create_connection(address_, 10s);
  EXPECT_EQ(exchange(address_, "not blocked\n"), "NOT BLOCKED\n");
  idle.sendall("finally\n");
  EXPECT_EQ(recv_to_eof(idle), "FINALLY\n");
}

TEST_F(ServerSocketTest, AnswersPythonClientAndExampleClient) {
  if (!test::have_program(test::python3())) GTEST_SKIP() << "no python3 in PATH";
  ASSERT_NO_FATAL_FAILURE(start({HOWTO_SERVER_SOCKET, "--port", "0"}));
  const auto py = run_command({test::python3(), "-c", python_client, port(), "from python"});
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, "FROM PYTHON\n");
  const auto ours = run_command({HOWTO_CLIENT_SOCKET, "127.0.0.1", port(), "from c++"});
  EXPECT_EQ(ours.exit_code, 0) << ours.err;
  EXPECT_EQ(ours.out, "FROM C++\n");
}

TEST_F(ServerSocketTest, AnswersNetcat) {
  if (!nc_supports_half_close()) GTEST_SKIP() << "no OpenBSD nc (with -N) in PATH";
  ASSERT_NO_FATAL_FAILURE(start({HOWTO_SERVER_SOCKET, "--port", "0"}));
  const auto r = run_command({"nc", "-N", "-w", "10", "127.0.0.1", port()}, "from nc\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "FROM NC\n");
}

using NonblockingServerTest = ServerProgramTest;

TEST_F(NonblockingServerTest, EchoesToOurSocketPythonAndNetcat) {
  ASSERT_NO_FATAL_FAILURE(start({HOWTO_NONBLOCKING_SERVER, "--port", "0"}));
  EXPECT_EQ(exchange(address_, "echo me"), "echo me");
  if (test::have_program(test::python3())) {
    const auto py = run_command({test::python3(), "-c", python_client, port(), "from python"});
    EXPECT_EQ(py.exit_code, 0) << py.err;
    EXPECT_EQ(py.out, "from python\n");
  }
  if (nc_supports_half_close()) {
    const auto r = run_command({"nc", "-N", "-w", "10", "127.0.0.1", port()}, "from nc\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "from nc\n");
  }
}

TEST_F(NonblockingServerTest, MultiplexesManyInterleavedClients) {
  ASSERT_NO_FATAL_FAILURE(start({HOWTO_NONBLOCKING_SERVER, "--port", "0"}));
  std::vector<Socket> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(create_connection(address_, 10s));
  // Round-robin pieces: the server must keep every connection's bytes apart and in order.
  for (int piece = 0; piece < 3; ++piece) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      clients[i].sendall("client " + std::to_string(i) + " piece " + std::to_string(piece) + ";");
    }
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].shutdown(SHUT_WR);
    const std::string c = "client " + std::to_string(i);
    EXPECT_EQ(recv_to_eof(clients[i]), c + " piece 0;" + c + " piece 1;" + c + " piece 2;");
  }
}

TEST_F(NonblockingServerTest, EchoesLargePayloadUnderBackPressure) {
  ASSERT_NO_FATAL_FAILURE(start({HOWTO_NONBLOCKING_SERVER, "--port", "0"}));
  Socket client = create_connection(address_, 30s);
  std::string payload(8 << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 % 251);
  std::thread sender([&] {
    client.sendall(payload);  // far more than the server buffers before it stops reading
    client.shutdown(SHUT_WR);
  });
  const std::string echoed = recv_to_eof(client);
  sender.join();
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
}

TEST_F(NonblockingServerTest, SurvivesClientThatResets) {
  ASSERT_NO_FATAL_FAILURE(start({HOWTO_NONBLOCKING_SERVER, "--port", "0"}));
  for (int i = 0; i < 5; ++i) {
    Socket rude = create_connection(address_, 10s);
    rude.sendall(std::string(100000, 'r'));
    rude.set_linger(0s);
    rude.close();  // RST, possibly while the server is echoing to it
  }
  EXPECT_EQ(exchange(address_, "still here"), "still here");
}

}  // namespace
}  // namespace sockserv
