// SPDX-License-Identifier: MIT
// The SocketServer.TCPServer example of the socketserver docs (seed 003, "例" section, lines
// 308-345), server side:
//
//   class MyTCPHandler(SocketServer.BaseRequestHandler):
//       def handle(self):
//           # self.request is the TCP socket connected to the client
//           self.data = self.request.recv(1024).strip()
//           print "%s wrote:" % self.client_address[0]
//           print self.data
//           # just send back the same data, but upper-cased
//           self.request.send(self.data.upper())
//
// Usage: tcp_server [HOST [PORT]]   (default: localhost 9999; PORT 0 picks a free port)
// stdout is the seed's transcript ("127.0.0.1 wrote:" / "hello world with TCP"); the address the
// server listens on goes to stderr as "listening on ADDRESS", so a test can find the port.
#include <sockserv/handlers.hpp>
#include <sockserv/server.hpp>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

namespace {

// Python's bytes.strip(): the data without leading and trailing whitespace.
std::string strip(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(" \t\n\r\f\v") - first + 1));
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

class MyTCPHandler : public sockserv::BaseRequestHandler {
 public:
  using BaseRequestHandler::BaseRequestHandler;

  void handle() override {
    // request is the TCP socket connected to the client.
    data_ = strip(request.recv(1024));
    std::cout << client_address.host() << " wrote:\n" << data_ << std::endl;
    // Just send back the same data, but upper-cased.
    request.sendall(upper(data_));
  }

 private:
  std::string data_;
};

int run(int argc, char** argv) {
  const std::string host = argc > 1 ? argv[1] : "localhost";
  std::uint16_t port = 9999;
  if (argc > 2) {
    const std::string_view text = argv[2];
    if (std::from_chars(text.data(), text.data() + text.size(), port).ec != std::errc{}) {
      std::cerr << "usage: tcp_server [HOST [PORT]]\n";
      return 2;
    }
  }
  // Create the server, binding to localhost on port 9999.
  sockserv::TCPServer server({host, port}, sockserv::handler<MyTCPHandler>());
  std::cerr << "listening on " << server.server_address << std::endl;
  // Activate the server; this will keep running until you interrupt the program with Ctrl-C.
  server.serve_forever();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << "\n";
    return 1;
  }
}
