// SPDX-License-Identifier: MIT
// Tutorial chapter 10, "Request handlers": a datagram handler, a handler written as a lambda,
// and what a server does with a handler's exception. Each server runs on a thread of its own and
// main() is the client.
#include <sockserv/handlers.hpp>
#include <sockserv/server.hpp>
#include <sockserv/socket.hpp>

#include <cctype>
#include <chrono>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// [snippet:datagram]
// rfile holds the datagram; what handle() writes to wfile goes back to the client as one
// datagram when the handler finishes.
class UpperDatagram : public sockserv::DatagramRequestHandler {
 public:
  using DatagramRequestHandler::DatagramRequestHandler;
  void handle() override { wfile.write(upper(rfile.read())); }
};
// [end:datagram]

// [snippet:handle_error]
// handle_error() may be overridden: it is called with the exception a handler threw, and then
// the request is shut down as usual. The server goes on serving.
class QuietServer : public sockserv::TCPServer {
 public:
  using TCPServer::TCPServer;
  void handle_error(sockserv::Request&, const sockserv::Address& client,
                    std::exception_ptr error) override {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      std::cout << "handle_error: a handler for " << client.host() << " threw: " << e.what()
                << '\n';
    }
  }
};
// [end:handle_error]

void udp_demo() {
  // [snippet:udp]
  sockserv::UDPServer server({"127.0.0.1", 0}, sockserv::handler<UpperDatagram>());
  std::jthread serving([&server] { server.serve_forever(); });
  sockserv::Socket sock(AF_INET, SOCK_DGRAM);
  sock.settimeout(5s);
  sock.sendto("hello world with UDP", server.server_address);
  std::cout << "UDP reply: " << sock.recvfrom(1024).first << '\n';
  server.shutdown();
  // [end:udp]
}

void lambda_demo() {
  // [snippet:lambda]
  // A handler class with only handle() can be a lambda over the base class.
  QuietServer server({"127.0.0.1", 0},
                     sockserv::handler<sockserv::StreamRequestHandler>([](auto& self) {
                       const std::string line = self.rfile.readline();
                       if (line == "fail\n") throw std::runtime_error("asked to fail");
                       self.wfile.write("you said: " + line);
                     }));
  std::jthread serving([&server] { server.serve_forever(); });
  for (const char* line : {"hi\n", "fail\n"}) {
    sockserv::Socket sock = sockserv::create_connection(server.server_address, 5s);
    sock.sendall(line);
    const std::string reply = sock.recv(1024);  // '' when the handler threw
    std::cout << "reply: '" << reply << "'\n";
  }
  server.shutdown();
  // [end:lambda]
}

}  // namespace

int main() {
  try {
    udp_demo();
    lambda_demo();
  } catch (const std::exception& e) {
    std::cerr << "handlers: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
