// SPDX-License-Identifier: MIT
// The client side of the socketserver docs' TCPServer example (seed 003, "例" section, lines
// 372-393):
//
//   HOST, PORT = "localhost", 9999
//   data = " ".join(sys.argv[1:])
//   # Create a socket (SOCK_STREAM means a TCP socket)
//   sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
//   # Connect to server and send data
//   sock.connect((HOST, PORT))
//   sock.send(data + "\n")
//   # Receive data from the server and shut down
//   received = sock.recv(1024)
//   sock.close()
//   print "Sent:     %s" % data
//   print "Received: %s" % received
//
// Usage: tcp_client [--host HOST] [--port PORT] WORDS...   (default: localhost 9999)
// The seed hard-codes HOST and PORT and takes only the words; the two options let a test point
// the client at a server listening on a port the kernel chose. Everything else is the message.
//
//   $ tcp_client hello world with TCP
//   Sent:     hello world with TCP
//   Received: HELLO WORLD WITH TCP
#include <sockserv/socket.hpp>

#include <charconv>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

namespace {

int run(int argc, char** argv) {
  std::string host = "localhost";
  std::uint16_t port = 9999;
  std::string data;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else if (arg == "--port" && i + 1 < argc) {
      const std::string_view text = argv[++i];
      if (std::from_chars(text.data(), text.data() + text.size(), port).ec != std::errc{}) {
        std::cerr << "usage: tcp_client [--host HOST] [--port PORT] WORDS...\n";
        return 2;
      }
    } else {
      data += (data.empty() ? "" : " ") + std::string(arg);  // " ".join(sys.argv[1:])
    }
  }
  const sockserv::Address address(host, port);
  // Create a socket (SOCK_STREAM means a TCP socket).
  sockserv::Socket sock(address.family(), SOCK_STREAM);
  // Connect to server and send data.
  sock.connect(address);
  sock.sendall(data + "\n");
  // Receive data from the server and shut down.
  const std::string received = sock.recv(1024);
  sock.close();

  std::cout << "Sent:     " << data << "\n";
  std::cout << "Received: " << received << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << "\n";
    return 1;
  }
}
