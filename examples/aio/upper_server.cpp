// SPDX-License-Identifier: MIT
// The seed's upper-case TCP server (socketserver docs, "TCPServer example", the
// StreamRequestHandler variant), written as a coroutine on the event loop: the handler reads like
// the blocking one, but one thread serves every client at once.
//
//   $ aio_upper_server [HOST PORT]          (default: localhost 9999)
//   $ sockserv send localhost:9999 hello world      ->  Received: HELLO WORLD
#include <sockserv/aio/server.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

using sockserv::aio::AsyncTCPServer;
using sockserv::aio::Connection;
using sockserv::aio::Task;

Task<void> handle(Connection conn) {
  const auto client = conn.peer_address();
  // Like the seed: read a line, print who wrote it, send it back upper-cased; until EOF.
  for (std::string data; !(data = co_await conn.readline()).empty();) {
    while (!data.empty() && std::isspace(static_cast<unsigned char>(data.back()))) data.pop_back();
    std::cout << client.host() << " wrote:\n" << data << std::endl;
    std::transform(data.begin(), data.end(), data.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    co_await conn.sendall(data + "\n");
  }
}

int main(int argc, char** argv) {
  // A start-up failure (a port in use, a bad host) is one line on stderr and exit status 1.
  try {
    const std::string host = argc > 2 ? argv[1] : "localhost";
    const auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 9999);
    // One loop (the default), so the prints come out in order.
    AsyncTCPServer server({host, port}, handle);
    std::cerr << "listening on " << server.server_address << std::endl;
    server.serve_forever();
  } catch (const std::exception& e) {
    std::cerr << "aio_upper_server: " << e.what() << std::endl;
    return 1;
  }
}
