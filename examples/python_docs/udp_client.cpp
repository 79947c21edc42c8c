// SPDX-License-Identifier: MIT
// The client side of the socketserver docs' UDPServer example (seed 003, "例" section, lines
// 448-469):
//
//   HOST, PORT = "localhost", 9999
//   data = " ".join(sys.argv[1:])
//   # SOCK_DGRAM is the socket type to use for UDP sockets
//   sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
//   # As you can see, there is no connect() call; UDP has no connections.
//   # Instead, data is directly sent to the recipient via sendto().
//   sock.sendto(data + "\n", (HOST, PORT))
//   received = sock.recv(1024)
//   print "Sent:     %s" % data
//   print "Received: %s" % received
//
// "The output of the example should look exactly like for the TCP server example."
//
// Usage: udp_client [--host HOST] [--port PORT] WORDS...   (default: localhost 9999)
// Unlike the seed, the client gives up after 10 s without a reply (a lost datagram, or no
// server): UDP never tells the sender, so waiting forever would hang it for good.
#include <sockserv/socket.hpp>

#include <charconv>
#include <chrono>
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
        std::cerr << "usage: udp_client [--host HOST] [--port PORT] WORDS...\n";
        return 2;
      }
    } else {
      data += (data.empty() ? "" : " ") + std::string(arg);  // " ".join(sys.argv[1:])
    }
  }
  const sockserv::Address address(host, port);
  // SOCK_DGRAM is the socket type to use for UDP sockets.
  sockserv::Socket sock(address.family(), SOCK_DGRAM);
  sock.settimeout(std::chrono::seconds(10));
  // As you can see, there is no connect() call; UDP has no connections. Instead, data is
  // directly sent to the recipient via sendto().
  sock.sendto(data + "\n", address);
  const std::string received = sock.recv(1024);

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
