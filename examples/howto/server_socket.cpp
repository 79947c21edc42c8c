// SPDX-License-Identifier: MIT
// The Socket Programming HOWTO, "Creating a Socket": the web server's side.
//
//   # create an INET, STREAMing socket
//   serversocket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
//   # bind the socket to a public host, and a well-known port
//   serversocket.bind((socket.gethostname(), 80))
//   # become a server socket
//   serversocket.listen(5)
//
//   while True:
//       # accept connections from outside
//       (clientsocket, address) = serversocket.accept()
//       # now do something with the clientsocket
//       # in this case, we'll pretend this is a threaded server
//       ct = client_thread(clientsocket)
//       ct.run()
//
// Differences from the fragment, on purpose: the default host is 127.0.0.1, "only visible
// within the same machine", and the default port is 0, so the kernel picks a free one ("use a
// nice high number"); the address is printed as "listening on ADDRESS".
//
// The protocol, like HTTP/1.0 in the HOWTO, is one exchange per connection: the client sends
// one line, the server answers with that line upper-cased and closes the connection.
//
// Usage: server_socket [--host HOST] [--port PORT]     (or: server_socket [HOST [PORT]])
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>

#include <cctype>
#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace {

using namespace std::chrono_literals;

// The body of the HOWTO's client_thread: one request line in, the reply out, then a clean close.
void client_thread(sockserv::Socket clientsocket, sockserv::Address address) {
  try {
    // A client that connects and says nothing must not hold this thread forever.
    clientsocket.settimeout(30s);
    sockserv::SocketFile file(clientsocket);
    std::string line = file.readline(4096);  // bounded: a longer line is an error
    for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (line.empty() || line.back() != '\n') line += '\n';
    file.write(line);
    // shutdown, then close once the client has read everything: no reset can eat the reply.
    clientsocket.graceful_close(2s);
  } catch (const std::exception& e) {
    std::cerr << "server_socket: client " << address << ": " << e.what() << '\n';
  }
}

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "0";
};

bool parse_args(int argc, char** argv, Options& options) {
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if ((arg == "--host" || arg == "--port") && i + 1 < argc) {
      (arg == "--host" ? options.host : options.port) = argv[++i];
    } else if (!arg.starts_with("--") && positional < 2) {
      (positional++ == 0 ? options.host : options.port) = std::string(arg);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_args(argc, argv, options)) {
    std::cerr << "usage: server_socket [--host HOST] [--port PORT]\n";
    return 2;
  }
  try {
    const sockserv::Address where =
        sockserv::getaddrinfo(options.host, options.port, AF_INET, SOCK_STREAM).front().address;

    // Create an INET, STREAMing socket, bind it, and become a server socket.
    sockserv::Socket serversocket(AF_INET, SOCK_STREAM);
    serversocket.set_reuse_address(true);  // restart at once without "Address already in use"
    serversocket.bind(where);
    serversocket.listen(5);
    std::cout << "listening on " << serversocket.getsockname() << std::endl;  // flushes

    for (;;) {
      // Accept connections from outside. A client that gave up while waiting in the backlog is
      // not the server's problem (ConnectionError: ECONNABORTED); anything else ends the server.
      std::pair<sockserv::Socket, sockserv::Address> accepted;
      try {
        accepted = serversocket.accept();
      } catch (const sockserv::ConnectionError&) {
        continue;
      }
      // Now do something with the clientsocket: here, a thread of its own. The "server" socket
      // goes straight back to accepting; "It doesn't send any data. It doesn't receive any data."
      std::thread(client_thread, std::move(accepted.first), accepted.second).detach();
    }
  } catch (const std::exception& e) {
    std::cerr << "server_socket: " << e.what() << '\n';
    return 1;
  }
}
