// SPDX-License-Identifier: MIT
// The Socket Programming HOWTO, "Creating a Socket": what the browser does.
//
//   # create an INET, STREAMing socket
//   s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
//   # now connect to the web server on port 80 - the normal http port
//   s.connect(("www.python.org", 80))
//
// "When the connect completes, the socket s can be used to send in a request for the text of the
// page. The same socket will read the reply, and then be destroyed." The end of the reply is the
// server closing the connection ("a client can detect the end of the reply by receiving 0 bytes",
// section "Using a Socket").
//
// Usage: client_socket HOST PORT [REQUEST]
//   REQUEST is sent followed by "\n"; without it, "GET / HTTP/1.0\r\n\r\n" is sent. The reply is
//   written to stdout as it arrives.
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: client_socket HOST PORT [REQUEST]\n";
    return 2;
  }
  const std::string host = argv[1];
  const std::string port = argv[2];
  const std::string request =
      argc == 4 ? std::string(argv[3]) + "\n" : std::string("GET / HTTP/1.0\r\n\r\n");
  try {
    // The HOWTO talks only about INET sockets, so resolve the name for IPv4.
    const sockserv::Address server =
        sockserv::getaddrinfo(host, port, AF_INET, SOCK_STREAM).front().address;

    // Create an INET, STREAMing socket ...
    sockserv::Socket s(AF_INET, SOCK_STREAM);
    // ... that gives up instead of hanging when the server goes quiet ("When Sockets Die").
    s.settimeout(10s);
    // Now connect to the web server.
    s.connect(server);

    // send() may take only part of the request; sendall() loops until all of it is gone.
    s.sendall(request);

    // Read the reply until the server closes: recv() returning 0 bytes is the end. The total is
    // capped so a server that never stops talking cannot fill our memory.
    constexpr std::size_t max_reply = 16 << 20;
    std::size_t total = 0;
    for (std::string chunk = s.recv(2048); !chunk.empty(); chunk = s.recv(2048)) {
      std::cout << chunk << std::flush;
      total += chunk.size();
      if (total > max_reply) {
        std::cerr << "client_socket: reply longer than " << max_reply << " bytes, giving up\n";
        return 1;
      }
    }
    // Leaving the scope closes the socket: "Please close your sockets when you're done."
  } catch (const std::exception& e) {
    std::cerr << "client_socket: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
