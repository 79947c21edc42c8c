// SPDX-License-Identifier: MIT
// Tutorial chapter 13, "Deployment": a server that takes its listening socket from systemd when
// started by a .socket unit (socket activation), and binds one itself otherwise. Run by hand it
// binds 127.0.0.1 on a free port, serves one connection of its own, and exits.
#include <sockserv/activation.hpp>
#include <sockserv/handlers.hpp>
#include <sockserv/server.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <memory>
#include <thread>

namespace {

class HelloHandler : public sockserv::StreamRequestHandler {
 public:
  using StreamRequestHandler::StreamRequestHandler;
  void handle() override { wfile.write("hello\n"); }
};

// [snippet:listen_fds]
std::unique_ptr<sockserv::TCPServer> make_server() {
  auto inherited = sockserv::listen_fds();
  if (inherited.empty()) {
    std::cout << "no socket from systemd: binding one\n";
    return std::make_unique<sockserv::TCPServer>(sockserv::Address::ipv4("127.0.0.1", 0),
                                                 sockserv::handler<HelloHandler>());
  }
  std::cout << "serving the socket systemd passed\n";
  auto server = std::make_unique<sockserv::TCPServer>(inherited.front().getsockname(),
                                                      sockserv::handler<HelloHandler>(), false);
  server->adopt_socket(std::move(inherited.front()));
  return server;
}
// [end:listen_fds]

}  // namespace

int main() {
  try {
    auto server = make_server();
    std::jthread serving([&server] { server->serve_forever(); });
    try {
      auto sock = sockserv::create_connection(server->server_address, std::chrono::seconds(5));
      std::cout << "a client got: " << sock.recv(64);
    } catch (const std::exception& e) {
      std::cerr << "activation: client: " << e.what() << '\n';
    }
    server->shutdown();
  } catch (const std::exception& e) {
    std::cerr << "activation: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
