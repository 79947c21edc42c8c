// SPDX-License-Identifier: MIT
// Tutorial chapter 8, "Server classes": the socketserver docs' upper-case TCP server, with the
// client in the same program. The server runs serve_forever() on a thread of its own; main() is
// the client, and stops the server with shutdown() when it is done.
#include <sockserv/handlers.hpp>
#include <sockserv/server.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>

#include <cctype>
#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <thread>

namespace {

// [snippet:handler]
// One handler object per connection: the server constructs it and calls setup(), handle(),
// finish(). rfile and wfile are buffered files over the connection, as in Python.
class UpperHandler : public sockserv::StreamRequestHandler {
 public:
  using StreamRequestHandler::StreamRequestHandler;

  void handle() override {
    // Each line until the client's end of stream; a line is at most 64 KiB (rfile's limit).
    for (std::string line : rfile.lines()) {
      for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      wfile.write(line);
    }
  }
};
// [end:handler]

// [snippet:client]
// The client: one line at a time, each reply read back with a buffered file of our own.
bool talk(const sockserv::Address& server_address) {
  try {
    sockserv::Socket sock = sockserv::create_connection(server_address, std::chrono::seconds(5));
    sockserv::SocketFile replies(sock);
    for (const char* line : {"hello world\n", "with TCP\n"}) {
      sock.sendall(line);
      std::cout << "Received: " << replies.readline();
    }
    return true;  // closing the socket ends the handler's loop: our end of stream
  } catch (const std::exception& e) {
    std::cerr << "tcp_server: client: " << e.what() << '\n';
    return false;
  }
}
// [end:client]

}  // namespace

int main() {
  try {
    // [snippet:server]
    // Port 0: any free port; server_address then holds the one the kernel chose.
    sockserv::TCPServer server({"127.0.0.1", 0}, sockserv::handler<UpperHandler>());
    std::jthread serving([&server] { server.serve_forever(); });
    const bool ok = talk(server.server_address);
    server.shutdown();  // wakes serve_forever() at once and waits until it has returned
    // [end:server]
    std::cout << "connections accepted: " << server.stats.accepted.load() << '\n';
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "tcp_server: " << e.what() << '\n';
    return 1;
  }
}
