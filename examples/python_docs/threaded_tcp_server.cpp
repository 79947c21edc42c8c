// SPDX-License-Identifier: MIT
// The ThreadingMixIn example of the socketserver docs (seed 003, "平行処理の Mix-in" section,
// lines 471-537):
//
//   class ThreadedTCPRequestHandler(SocketServer.BaseRequestHandler):
//       def handle(self):
//           data = self.request.recv(1024)
//           cur_thread = threading.currentThread()
//           response = "%s: %s" % (cur_thread.getName(), data)
//           self.request.send(response)
//
//   class ThreadedTCPServer(SocketServer.ThreadingMixIn, SocketServer.TCPServer):
//       pass
//
// Expected output (the seed's transcript):
//
//   Server loop running in thread: Thread-1
//   Received: Thread-2: Hello World 1
//   Received: Thread-3: Hello World 2
//   Received: Thread-4: Hello World 3
//
// Usage: threaded_tcp_server [HOST [PORT]]   (default: localhost 0, "an arbitrary unused port")
// "listening on ADDRESS" goes to stderr.
#include <sockserv/handlers.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/server.hpp>
#include <sockserv/thread.hpp>

#include <charconv>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

namespace {

// [snippet:handler]
class ThreadedTCPRequestHandler : public sockserv::BaseRequestHandler {
 public:
  using BaseRequestHandler::BaseRequestHandler;

  void handle() override {
    const std::string data = request.recv(1024);
    const std::string response = sockserv::current_thread_name() + ": " + data;
    request.sendall(response);
  }
};

using ThreadedTCPServer = sockserv::ThreadingMixIn<sockserv::TCPServer>;
// [end:handler]

void client(const sockserv::Address& address, std::string_view message) {
  sockserv::Socket sock(address.family(), SOCK_STREAM);
  sock.connect(address);
  sock.sendall(message);
  const std::string response = sock.recv(1024);
  std::cout << "Received: " << response << std::endl;
}

int run(int argc, char** argv) {
  // Port 0 means to select an arbitrary unused port.
  const std::string host = argc > 1 ? argv[1] : "localhost";
  std::uint16_t port = 0;
  if (argc > 2) {
    const std::string_view text = argv[2];
    if (std::from_chars(text.data(), text.data() + text.size(), port).ec != std::errc{}) {
      std::cerr << "usage: threaded_tcp_server [HOST [PORT]]\n";
      return 2;
    }
  }
  ThreadedTCPServer server({host, port}, sockserv::handler<ThreadedTCPRequestHandler>());
  const sockserv::Address address = server.server_address;  // ip, port = server.server_address
  std::cerr << "listening on " << address << std::endl;

  // Start a thread with the server -- that thread will then start one more thread for each
  // request. (Python makes it a daemon thread; here it is joined when it goes out of scope, after
  // shutdown(), which `stop` also calls should a client fail.)
  sockserv::Thread server_thread([&server] { server.serve_forever(); });
  struct StopServer {
    ThreadedTCPServer& server;
    ~StopServer() { server.shutdown(); }
  } stop{server};
  std::cout << "Server loop running in thread: " << server_thread.name() << std::endl;

  client(address, "Hello World 1");
  client(address, "Hello World 2");
  client(address, "Hello World 3");

  server.shutdown();
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
