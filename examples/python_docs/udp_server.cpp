// SPDX-License-Identifier: MIT
// The SocketServer.UDPServer example of the socketserver docs (seed 003, "例" section, lines
// 417-446), server side:
//
//   class MyUDPHandler(SocketServer.BaseRequestHandler):
//       """
//       This class works similar to the TCP handler class, except that
//       self.request consists of a pair of data and client socket, and since
//       there is no connection the client address must be given explicitly
//       when sending data back via sendto().
//       """
//       def handle(self):
//           data = self.request[0].strip()
//           socket = self.request[1]
//           print "%s wrote:" % self.client_address[0]
//           print data
//           socket.sendto(data.upper(), self.client_address)
//
// Usage: udp_server [HOST [PORT]]   (default: localhost 9999; PORT 0 picks a free port)
// stdout is the seed's transcript; "listening on ADDRESS" goes to stderr.
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

class MyUDPHandler : public sockserv::BaseRequestHandler {
 public:
  using BaseRequestHandler::BaseRequestHandler;

  void handle() override {
    // request.packet() is Python's self.request[0], request.socket() its self.request[1].
    const std::string data = strip(request.packet());
    sockserv::Socket& socket = request.socket();
    std::cout << client_address.host() << " wrote:\n" << data << std::endl;
    socket.sendto(upper(data), client_address);
  }
};

int run(int argc, char** argv) {
  const std::string host = argc > 1 ? argv[1] : "localhost";
  std::uint16_t port = 9999;
  if (argc > 2) {
    const std::string_view text = argv[2];
    if (std::from_chars(text.data(), text.data() + text.size(), port).ec != std::errc{}) {
      std::cerr << "usage: udp_server [HOST [PORT]]\n";
      return 2;
    }
  }
  sockserv::UDPServer server({host, port}, sockserv::handler<MyUDPHandler>());
  std::cerr << "listening on " << server.server_address << std::endl;
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
