// SPDX-License-Identifier: MIT
// Tutorial chapter 12, "TLS": the upper-case server of chapter 8 over TLS. The handler is the
// same class; only the server gets a context with a certificate. The client in main() is
// Python's ssl.create_default_context(cafile=...) + wrap_socket(server_hostname=...).
//
// Usage: tls_server CERT KEY   (a certificate for "localhost", and its key; see the chapter)
#include <sockserv/handlers.hpp>
#include <sockserv/mixins.hpp>
#include <sockserv/socket_file.hpp>
#include <sockserv/tls/ssl_context.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include <cctype>
#include <chrono>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

namespace {

class UpperHandler : public sockserv::StreamRequestHandler {
 public:
  using StreamRequestHandler::StreamRequestHandler;
  void handle() override {
    for (std::string line : rfile.lines()) {
      for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      wfile.write(line);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tls_server CERT KEY\n";
    return 2;
  }
  if (!sockserv::tls_available()) {
    std::cerr << "tls_server: this sockserv was built without OpenSSL\n";
    return 77;  // "skipped" to scripts/check-tutorial.py
  }
  try {
    // [snippet:server]
    sockserv::ThreadingTCPServer server({"127.0.0.1", 0}, sockserv::handler<UpperHandler>());
    auto context = sockserv::create_default_context(sockserv::Purpose::CLIENT_AUTH);
    context.load_cert_chain(argv[1], argv[2]);
    server.set_ssl_context(std::make_shared<const sockserv::SSLContext>(std::move(context)));
    std::jthread serving([&server] { server.serve_forever(); });
    // [end:server]
    try {
      // [snippet:client]
      // The client trusts exactly this certificate, and checks that it names "localhost".
      auto client_context =
          sockserv::create_default_context(sockserv::Purpose::SERVER_AUTH, argv[1]);
      auto tls = client_context.wrap_socket(
          sockserv::create_connection(server.server_address, std::chrono::seconds(5)),
          /*server_side=*/false, "localhost");
      std::cout << "handshake done, the certificate was verified\n";
      tls.sendall("hello over TLS\n");
      std::cout << "Received: " << sockserv::SocketFile(tls).readline();
      tls.graceful_close();  // close_notify, then the peer's
      // [end:client]
    } catch (const std::exception& e) {
      std::cerr << "tls_server: client: " << e.what() << '\n';
    }
    server.shutdown();
  } catch (const std::exception& e) {
    std::cerr << "tls_server: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
