// SPDX-License-Identifier: MIT
// Tutorial chapter 11, "Event-loop servers": the upper-case server as a coroutine on
// sockserv::aio's event loop. One thread serves every client; here three clients are connected
// at once, and the replies show that the one loop took turns between them.
#include <sockserv/aio/server.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>

#include <cctype>
#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

using sockserv::aio::AsyncTCPServer;
using sockserv::aio::Connection;
using sockserv::aio::Task;

// [snippet:handler]
// The handler is a coroutine that owns its connection. co_await suspends it while the
// socket has nothing to read, and the loop runs other connections meanwhile.
Task<void> upper(Connection conn) {
  for (std::string line; !(line = co_await conn.readline()).empty();) {
    for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    co_await conn.sendall(line);
  }
}
// [end:handler]

int main() {
  using namespace std::chrono_literals;
  try {
    // [snippet:server]
    AsyncTCPServer server({"127.0.0.1", 0}, upper);
    std::jthread serving([&server] { server.serve_forever(); });
    // [end:server]
    try {
      // [snippet:clients]
      // Three connections open at once; each line is answered while the others stay open.
      std::vector<sockserv::Socket> clients;
      for (int i = 0; i < 3; ++i)
        clients.push_back(sockserv::create_connection(server.server_address, 5s));
      for (int round = 1; round <= 2; ++round) {
        for (std::size_t i = 0; i < clients.size(); ++i) {
          clients[i].sendall("client " + std::to_string(i + 1) + ", line " + std::to_string(round) +
                             "\n");
          // A file made for one readline(): the reply is all there is to read, so none is lost.
          std::cout << sockserv::SocketFile(clients[i]).readline();
        }
      }
      // [end:clients]
    } catch (const std::exception& e) {
      std::cerr << "aio_upper: client: " << e.what() << '\n';
    }
    server.shutdown();  // cancels the handlers still waiting for a line, then serve_forever returns
  } catch (const std::exception& e) {
    std::cerr << "aio_upper: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
