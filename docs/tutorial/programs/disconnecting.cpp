// SPDX-License-Identifier: MIT
// Tutorial chapter 5, "Disconnecting": the HOWTO's HTTP-like exchange, where the end of the
// request is the client's shutdown(SHUT_WR) and the end of the reply is the server's close.
// Both ends are in this program over loopback, on one thread (the messages are small).
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>

namespace {

// [snippet:read_to_eof]
// Everything until the peer's end of stream, at most `limit` bytes.
std::string read_to_eof(sockserv::Socket& sock, std::size_t limit) {
  std::string all;
  for (std::string chunk = sock.recv(4096); !chunk.empty(); chunk = sock.recv(4096)) {
    all += chunk;
    if (all.size() > limit) throw std::length_error("peer sent too much");
  }
  return all;
}
// [end:read_to_eof]

}  // namespace

int main() {
  try {
    sockserv::Socket listener = sockserv::create_server(sockserv::Address::ipv4("127.0.0.1", 0));
    sockserv::Socket client = sockserv::create_connection(listener.getsockname());
    sockserv::Socket conn = listener.accept().first;
    client.settimeout(std::chrono::seconds(5));
    conn.settimeout(std::chrono::seconds(5));

    // [snippet:exchange]
    client.sendall("GET /tutorial HTTP/1.0\r\n\r\n");
    client.shutdown(SHUT_WR);  // "done sending, but can still receive"

    const std::string request = read_to_eof(conn, 65536);  // 0 bytes: the request is complete
    std::cout << "server: request of " << request.size() << " bytes, then EOF\n";
    conn.sendall("HTTP/1.0 200 OK\r\n\r\nbye\n");
    conn.shutdown(SHUT_WR);  // the reply is complete

    const std::string reply = read_to_eof(client, 65536);
    std::cout << "client: reply of " << reply.size() << " bytes, then EOF\n";
    client.close();
    // The server's last recv() sees the client's close: both sides are done, nothing can reset.
    std::cout << "server: after the client's close, recv() returned " << conn.recv(16).size()
              << " bytes\n";
    conn.close();
    // [end:exchange]
  } catch (const std::exception& e) {
    std::cerr << "disconnecting: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
