// SPDX-License-Identifier: MIT
// The Socket Programming HOWTO, "Non-blocking Sockets": one thread serving many clients.
//
//   ready_to_read, ready_to_write, in_error = select.select(
//       potential_readers, potential_writers, potential_errs, timeout)
//
// "If you have a "server" socket, put it in the potential_readers list. If it comes out in the
// readable list, your accept will (almost certainly) work." Every socket is non-blocking, and a
// call is made only when select says it will not block. What send() could not take waits in the
// connection's output buffer, and the socket is in the potential_writers list (EVENT_WRITE) only
// while that buffer holds something: "any reasonably healthy socket will return as writable", so
// watching it for writability all the time would make select() return at once, forever.
//
// The service is echo (RFC 862): every byte received is sent back. A client that sends faster
// than it reads gets back-pressure: past 1 MiB of unsent echo, the server stops reading from it.
//
// Usage: nonblocking_server [--host HOST] [--port PORT]   (defaults 127.0.0.1, 0 = any free port)
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/selector.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

namespace {

constexpr std::size_t high_water = 1 << 20;  // stop reading above this much pending output

struct Connection {
  sockserv::Socket sock;
  std::string out;    // received, not yet echoed
  bool eof = false;   // the client has shut down its sending side
  bool dead = false;  // an error (a reset): close without echoing the rest
};

class EchoServer {
 public:
  explicit EchoServer(const sockserv::Address& where)
      : listener_(sockserv::create_server(where, options())) {
    listener_.setblocking(false);
    selector_.register_(listener_.fileno(), sockserv::EVENT_READ);
  }
  const sockserv::Socket& listener() const { return listener_; }

  // One turn of the loop: wait (at most a second, "generally a sensible thing to do"), then
  // serve every socket that is ready.
  void run_once() {
    for (const auto& [key, events] : selector_.select(std::chrono::seconds(1))) {
      const int fd = key->fd;
      if (fd == listener_.fileno()) {
        accept_all();
        continue;
      }
      Connection& c = connections_.at(fd);
      if (events & sockserv::EVENT_READ) on_readable(c);
      if ((events & sockserv::EVENT_WRITE) && !c.dead) on_writable(c);
      update_interest(fd, c);
    }
  }

 private:
  static sockserv::ServerOptions options() {
    sockserv::ServerOptions o;
    o.backlog = 128;
    return o;
  }

  void accept_all() {
    for (int i = 0; i < 64; ++i) {  // bounded, so one busy listener cannot starve the clients
      std::error_code ec;
      auto [sock, peer] = listener_.accept(ec);
      if (ec) return;  // EAGAIN: no more pending connections (or one gave up: try next time)
      sock.setblocking(false);
      const int fd = sock.fileno();
      selector_.register_(fd, sockserv::EVENT_READ);
      connections_.emplace(fd, Connection{std::move(sock), {}, false, false});
    }
  }

  void on_readable(Connection& c) {
    char chunk[16384];
    std::error_code ec;
    const std::size_t n = c.sock.recv_into(chunk, ec);
    if (ec == std::errc::resource_unavailable_try_again) return;  // a spurious wake-up
    if (ec) return drop(c);                                       // a reset: forget the client
    if (n == 0) c.eof = true;  // "the other side has closed": echo what is left, then close
    c.out.append(chunk, n);
  }

  void on_writable(Connection& c) {
    std::error_code ec;
    const std::size_t n = c.sock.send(c.out, ec);  // "Maybe not all you want to, but something"
    if (ec && ec != std::errc::resource_unavailable_try_again) return drop(c);
    c.out.erase(0, n);
  }

  // Watch for reading while the client may send and we have room; for writing while output is
  // pending. A connection with nothing left to do (or a dead one) is unregistered, then closed.
  void update_interest(int fd, Connection& c) {
    const unsigned wanted = (!c.eof && c.out.size() < high_water ? sockserv::EVENT_READ : 0u) |
                            (c.out.empty() ? 0u : sockserv::EVENT_WRITE);
    if (wanted == 0 || c.dead) {
      selector_.unregister(fd);
      connections_.erase(fd);  // the Socket's destructor closes it
    } else if (wanted != selector_.get_key(fd)->events) {
      selector_.modify(fd, wanted);
    }
  }

  static void drop(Connection& c) { c.dead = true; }

  sockserv::Socket listener_;
  sockserv::Selector selector_;
  std::unordered_map<int, Connection> connections_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", port = "0";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag != "--host" && flag != "--port") {
      std::cerr << "usage: nonblocking_server [--host HOST] [--port PORT]\n";
      return 2;
    }
    (flag == "--host" ? host : port) = argv[i + 1];
  }
  try {
    EchoServer server(sockserv::getaddrinfo(host, port, AF_UNSPEC, SOCK_STREAM).front().address);
    std::cout << "listening on " << server.listener().getsockname() << std::endl;
    for (;;) server.run_once();  // until the process is told to stop (SIGTERM / Ctrl-C)
  } catch (const std::exception& e) {
    std::cerr << "nonblocking_server: " << e.what() << '\n';
    return 1;
  }
}
