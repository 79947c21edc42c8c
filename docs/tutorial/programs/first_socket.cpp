// SPDX-License-Identifier: MIT
// Tutorial chapter 1, "Creating a socket": the HOWTO's two fragments, the browser's client socket
// and the web server's listening socket, in one program over loopback. Both ends run on one
// thread: connect() completes as soon as the kernel has queued the connection in the listener's
// backlog, before anyone calls accept(), so the program needs no thread to talk to itself.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <exception>
#include <iostream>
#include <string>

int main() {
  try {
    // [snippet:server]
    // Create an INET, STREAMing socket, bind it to this machine only, and become a server socket.
    sockserv::Socket serversocket(AF_INET, SOCK_STREAM);
    serversocket.bind(sockserv::Address::ipv4("127.0.0.1", 0));  // port 0: the kernel picks one
    serversocket.listen(5);
    const sockserv::Address where = serversocket.getsockname();  // the port it picked
    // [end:server]

    // [snippet:client]
    // The browser's side: create an INET, STREAMing socket and connect to the server.
    sockserv::Socket s(AF_INET, SOCK_STREAM);
    s.connect(where);
    s.sendall("GET / HTTP/1.0\r\n\r\n");
    // [end:client]

    // [snippet:accept]
    // Accept connections from outside: a new socket for this client, and its address.
    auto [clientsocket, address] = serversocket.accept();
    std::cout << "accepted a connection from " << address.host() << '\n';
    const std::string request = clientsocket.recv(1024);
    std::cout << "the client sent " << request.size()
              << " bytes: " << request.substr(0, request.find('\r')) << '\n';
    clientsocket.sendall("HTTP/1.0 200 OK\r\n\r\nhello from the server socket\n");
    clientsocket.close();  // the end of the reply is the end of the connection
    // [end:accept]

    // [snippet:reply]
    // The client reads until recv() returns 0 bytes: the server has closed the connection.
    std::string reply;
    for (std::string chunk = s.recv(2048); !chunk.empty(); chunk = s.recv(2048)) reply += chunk;
    std::cout << "the client read " << reply.size()
              << " bytes, the last line: " << reply.substr(reply.rfind("\r\n") + 2);
    // [end:reply]
  } catch (const std::exception& e) {
    std::cerr << "first_socket: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
