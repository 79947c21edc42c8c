// SPDX-License-Identifier: MIT
// The Socket Programming HOWTO, "Using a Socket": the fixed-length message class.
//
//   class MySocket:
//       """demonstration class only
//         - coded for clarity, not efficiency
//       """
//       def mysend(self, msg):
//           totalsent = 0
//           while totalsent < MSGLEN:
//               sent = self.sock.send(msg[totalsent:])
//               if sent == 0:
//                   raise RuntimeError("socket connection broken")
//               totalsent = totalsent + sent
//
//       def myreceive(self):
//           chunks = []
//           bytes_recd = 0
//           while bytes_recd < MSGLEN:
//               chunk = self.sock.recv(min(MSGLEN - bytes_recd, 2048))
//               if chunk == b'':
//                   raise RuntimeError("socket connection broken")
//               chunks.append(chunk)
//               bytes_recd = bytes_recd + len(chunk)
//           return b''.join(chunks)
//
// The program runs both ends over loopback: a client sends three fixed-length messages, the
// server answers each, and at the end the client hangs up half-way through a message, which the
// server's myreceive() reports as "socket connection broken". (sockserv's own versions of the
// two loops are Socket::sendall() and Socket::recv_exact().)
#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace {

// Every message is exactly MSGLEN bytes: "fixed length (yuck)".
constexpr std::size_t MSGLEN = 32;

class MySocket {
 public:
  // Demonstration class only, coded for clarity, not efficiency.
  MySocket() : sock_(AF_INET, SOCK_STREAM) {}
  explicit MySocket(sockserv::Socket sock) : sock_(std::move(sock)) {}

  void connect(const std::string& host, std::uint16_t port) {
    sock_.connect(sockserv::Address::ipv4(host, port));
  }

  // `msg` must be MSGLEN bytes long (see pad()).
  void mysend(std::string_view msg) {
    std::size_t totalsent = 0;
    while (totalsent < MSGLEN) {
      const std::size_t sent = sock_.send(msg.substr(totalsent));
      if (sent == 0) throw std::runtime_error("socket connection broken");
      totalsent += sent;
    }
  }

  std::string myreceive() {
    std::string chunks;
    std::size_t bytes_recd = 0;
    while (bytes_recd < MSGLEN) {
      const std::string chunk = sock_.recv(std::min(MSGLEN - bytes_recd, std::size_t{2048}));
      if (chunk.empty()) throw std::runtime_error("socket connection broken");
      chunks += chunk;
      bytes_recd += chunk.size();
    }
    return chunks;
  }

  sockserv::Socket& socket() { return sock_; }

 private:
  sockserv::Socket sock_;
};

// A message padded with spaces to MSGLEN bytes (longer text is cut).
std::string pad(std::string_view text) {
  std::string msg(text.substr(0, MSGLEN));
  msg.resize(MSGLEN, ' ');
  return msg;
}

std::mutex print_mutex;
void say(const std::string& who, const std::string& what) {
  const std::lock_guard lock(print_mutex);
  std::cout << who << ": " << what << std::endl;
}

void serve(sockserv::Socket& listener) {
  try {
    MySocket conn(listener.accept().first);
    conn.socket().settimeout(std::chrono::seconds(10));
    for (;;) {
      const std::string msg = conn.myreceive();
      say("server", "received [" + msg + "]");
      conn.mysend(pad("ack " + msg.substr(0, msg.find_last_not_of(' ') + 1)));
    }
  } catch (const std::exception& e) {
    say("server", e.what());
  }
}

}  // namespace

int main() {
  try {
    sockserv::Socket listener = sockserv::create_server(sockserv::Address::ipv4("127.0.0.1", 0));
    listener.settimeout(std::chrono::seconds(10));
    std::jthread server(serve, std::ref(listener));  // joined on every way out of this scope

    MySocket client;
    client.socket().settimeout(std::chrono::seconds(10));
    client.connect("127.0.0.1", listener.getsockname().port());
    for (const char* text : {"hello", "fixed length (yuck)", "third message"}) {
      client.mysend(pad(text));
      say("client", "got reply [" + client.myreceive() + "]");
    }
    // Hang up in the middle of a message: the server sees recv() return 0 bytes too early.
    client.socket().sendall(std::string(10, '!'));
    client.socket().close();
    server.join();
  } catch (const std::exception& e) {
    std::cerr << "mysocket: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
