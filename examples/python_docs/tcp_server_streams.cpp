// SPDX-License-Identifier: MIT
// The alternative handler of the socketserver docs' TCPServer example (seed 003, "例" section,
// lines 346-370), one that uses streams (file-like objects):
//
//   class MyTCPHandler(SocketServer.StreamRequestHandler):
//       def handle(self):
//           # self.rfile is a file-like object created by the handler;
//           # we can now use e.g. readline() instead of raw recv() calls
//           self.data = self.rfile.readline().strip()
//           print "%s wrote:" % self.client_address[0]
//           print self.data
//           # Likewise, self.wfile is a file-like object used to write back
//           # to the client
//           self.wfile.write(self.data.upper())
//
// "The difference is that the readline() call in the second handler will call recv() multiple
// times until it encounters a newline character."
//
// Usage: tcp_server_streams [HOST [PORT]]   (default: localhost 9999; PORT 0 picks a free port)
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

class MyTCPHandler : public sockserv::StreamRequestHandler {
 public:
  using StreamRequestHandler::StreamRequestHandler;

  void handle() override {
    // rfile is a file-like object created by the handler; we can now use e.g. readline()
    // instead of raw recv() calls.
    data_ = strip(rfile.readline());
    std::cout << client_address.host() << " wrote:\n" << data_ << std::endl;
    // Likewise, wfile is a file-like object used to write back to the client.
    wfile.write(upper(data_));
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
      std::cerr << "usage: tcp_server_streams [HOST [PORT]]\n";
      return 2;
    }
  }
  sockserv::TCPServer server({host, port}, sockserv::handler<MyTCPHandler>());
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
