// SPDX-License-Identifier: MIT
// Tutorial chapter 6, "When sockets die": a peer that says nothing, and a peer that vanishes.
// Python raises TimeoutError and ConnectionResetError; sockserv throws sockserv::TimeoutError and
// sockserv::ConnectionError (both std::system_error, with the errno kept in code()).
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>

int main() {
  using namespace std::chrono_literals;
  try {
    sockserv::Socket listener = sockserv::create_server(sockserv::Address::ipv4("127.0.0.1", 0));

    // [snippet:timeout]
    // A peer that connects and says nothing: without a timeout, recv() would wait forever.
    sockserv::Socket quiet = sockserv::create_connection(listener.getsockname());
    sockserv::Socket conn = listener.accept().first;
    conn.settimeout(100ms);
    try {
      (void)conn.recv(1024);
    } catch (const sockserv::TimeoutError&) {
      std::cout << "recv() on a silent peer: TimeoutError after the 100 ms timeout\n";
    }
    // [end:timeout]

    // [snippet:reset]
    // A peer that goes away abruptly: SO_LINGER 0 makes its close() send a reset (RST), as a
    // crashed process's kernel or a middlebox that forgot the connection would.
    quiet.set_linger(0s);
    quiet.close();
    try {
      (void)conn.recv(1024);
    } catch (const sockserv::ConnectionError& e) {
      std::cout << "recv() after a reset: ConnectionError ("
                << (e.code() == std::errc::connection_reset ? "ECONNRESET" : "other") << ")\n";
    }
    // [end:reset]

    // [snippet:dead_send]
    // Writing to it fails too, as EPIPE, never as SIGPIPE: sockserv sends with MSG_NOSIGNAL.
    try {
      conn.sendall("anyone there?");
      conn.sendall("anyone there?");
    } catch (const sockserv::ConnectionError&) {
      std::cout << "sendall() to the dead peer: ConnectionError, and the process lives on\n";
    }
    // [end:dead_send]
  } catch (const std::exception& e) {
    std::cerr << "when_sockets_die: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
