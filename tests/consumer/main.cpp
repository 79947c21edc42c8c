// SPDX-License-Identifier: MIT
// Uses the installed library end to end: a TCPServer on a free loopback port, one request.
#include <sockserv/handlers.hpp>
#include <sockserv/sockserv.hpp>

#include <iostream>
#include <thread>

int main() {
  using namespace sockserv;
  TCPServer server({"127.0.0.1", 0}, handler<StreamRequestHandler>([](StreamRequestHandler& h) {
                     h.wfile.write(h.rfile.readline());
                   }));
  std::thread serving([&] { server.handle_request(); });
  Socket client = create_connection(server.server_address);
  client.sendall("installed\n");
  SocketFile reply(client);
  const std::string line = reply.readline();
  serving.join();
  std::cout << line;
  return line == "installed\n" ? 0 : 1;
}
