// SPDX-License-Identifier: MIT
// Tutorial chapter 7, "Non-blocking sockets": a call that would wait returns at once instead,
// and a Selector (Python's selectors module, the HOWTO's select) says which sockets are ready.
// The full one-thread server built from these pieces is examples/howto/nonblocking_server.cpp.
#include <sockserv/address.hpp>
#include <sockserv/selector.hpp>
#include <sockserv/socket.hpp>

#include <any>
#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <system_error>

int main() {
  using namespace std::chrono_literals;
  try {
    sockserv::Socket listener = sockserv::create_server(sockserv::Address::ipv4("127.0.0.1", 0));
    sockserv::Socket a = sockserv::create_connection(listener.getsockname());
    sockserv::Socket a_conn = listener.accept().first;
    sockserv::Socket b = sockserv::create_connection(listener.getsockname());
    sockserv::Socket b_conn = listener.accept().first;

    // [snippet:would_block]
    // setblocking(false): recv() with nothing to read fails with EAGAIN instead of waiting.
    a_conn.setblocking(false);
    std::error_code ec;
    char buffer[1024];
    (void)a_conn.recv_into(buffer, ec);
    std::cout << "non-blocking recv() with nothing to read: "
              << (ec == std::errc::resource_unavailable_try_again ? "EAGAIN" : ec.message())
              << '\n';
    // [end:would_block]

    // [snippet:select]
    // Watch both server-side sockets for reading; only b's client has sent something.
    sockserv::Selector selector;
    selector.register_(a_conn.fileno(), sockserv::EVENT_READ, std::string("a"));
    selector.register_(b_conn.fileno(), sockserv::EVENT_READ, std::string("b"));
    b.sendall("hello");
    for (const auto& [key, events] : selector.select(1s)) {
      sockserv::Socket& ready = key->fd == a_conn.fileno() ? a_conn : b_conn;
      std::cout << std::any_cast<std::string>(key->data) << " is readable: '" << ready.recv(1024)
                << "'\n";
    }
    // Nothing more to read anywhere: select() returns an empty list after its timeout.
    std::cout << "ready after a 50 ms select(): " << selector.select(50ms).size() << '\n';
    // [end:select]
  } catch (const std::exception& e) {
    std::cerr << "nonblocking: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
