// SPDX-License-Identifier: MIT
// Tutorial chapter 2, "IPC": two processes on one machine talk over a Unix domain socket, or over
// a connected pair of sockets made before they part. Here both ends are in one program; a real
// pair is split by fork() (each process keeps one end) and a real Unix server has its own process.
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <unistd.h>

#include <exception>
#include <filesystem>
#include <iostream>
#include <string>

int main() {
  try {
    // [snippet:socketpair]
    // Two connected sockets, no address at all (Python's socket.socketpair()).
    auto [parent_end, child_end] = sockserv::socketpair();
    parent_end.sendall("ping");
    std::cout << "socketpair: the other end read '" << child_end.recv(16) << "'\n";
    // [end:socketpair]

    // [snippet:unix_path]
    // A Unix stream socket is named by a path in the file system instead of a host and port.
    const auto path = std::filesystem::temp_directory_path() /
                      ("tutorial-ipc-" + std::to_string(::getpid()) + ".sock");
    sockserv::Socket listener =
        sockserv::create_server(sockserv::Address::unix_path(path.string()));
    sockserv::Socket client = sockserv::create_connection(listener.getsockname());
    auto [conn, peer] = listener.accept();
    client.sendall("hello over AF_UNIX");
    std::cout << "unix socket: the server read '" << conn.recv(64) << "'\n";
    std::cout << "the socket file exists while the server listens: "
              << (std::filesystem::exists(path) ? "yes" : "no") << '\n';
    // [end:unix_path]
    listener.close();
    std::filesystem::remove(path);  // a Socket does not own the file; the servers remove theirs
  } catch (const std::exception& e) {
    std::cerr << "ipc: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
