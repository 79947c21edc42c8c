// SPDX-License-Identifier: MIT
// The Socket Programming HOWTO, "Disconnecting":
//
//   "One way to use shutdown effectively is in an HTTP-like exchange. The client sends a request
//    and then does a shutdown(1). This tells the server "This client is done sending, but can
//    still receive." The server can detect "EOF" by a receive of 0 bytes. It can assume it has
//    the complete request. The server sends a reply. If the send completes successfully then,
//    indeed, the client was still receiving."
//
// Both ends run in this program over loopback. The request has no length and no delimiter: its
// end is the client's shutdown(SHUT_WR). The reply's end is the server's close().
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

std::mutex print_mutex;
void say(const std::string& line) {
  const std::lock_guard lock(print_mutex);
  std::cout << line << std::endl;
}

// Reads until recv() returns 0 bytes, at most `limit` bytes (a request cannot grow forever).
std::string read_to_eof(sockserv::Socket& sock, std::size_t limit) {
  std::string all;
  for (std::string chunk = sock.recv(4096); !chunk.empty(); chunk = sock.recv(4096)) {
    all += chunk;
    if (all.size() > limit) throw std::length_error("more than " + std::to_string(limit));
  }
  return all;
}

void serve(sockserv::Socket& listener) {
  try {
    auto [conn, peer] = listener.accept();
    conn.settimeout(std::chrono::seconds(10));
    const std::string request = read_to_eof(conn, 1 << 20);  // EOF: "the complete request"
    say("server: EOF after " + std::to_string(request.size()) + " bytes: the request is complete");
    const std::string first_line = request.substr(0, request.find("\r\n"));
    conn.sendall("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nYou asked for: " + first_line +
                 "\n");
    say("server: reply sent, so the client was still receiving");
    conn.close();  // the reply ends where the connection does
  } catch (const std::exception& e) {
    say(std::string("server: ") + e.what());
  }
}

}  // namespace

int main() {
  try {
    sockserv::Socket listener = sockserv::create_server(sockserv::Address::ipv4("127.0.0.1", 0));
    listener.settimeout(std::chrono::seconds(10));
    std::jthread server(serve, std::ref(listener));

    sockserv::Socket client = sockserv::create_connection(listener.getsockname());
    client.settimeout(std::chrono::seconds(10));
    client.sendall("GET /howto HTTP/1.0\r\nHost: localhost\r\n\r\n");
    client.shutdown(SHUT_WR);  // shutdown(1): "done sending, but can still receive"
    say("client: request sent, shutdown(SHUT_WR) done");

    const std::string reply = read_to_eof(client, 1 << 20);
    say("client: reply (" + std::to_string(reply.size()) + " bytes) until EOF:\n" + reply);
    server.join();
  } catch (const std::exception& e) {
    std::cerr << "half_close: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
