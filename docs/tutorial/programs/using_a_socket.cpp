// SPDX-License-Identifier: MIT
// Tutorial chapter 3, "Using a socket": what send() and recv() promise and what they do not.
// Both ends are in this program over loopback; every message is small enough to sit in the
// kernel's buffers, so one thread can send and then receive without waiting for itself.
#include <sockserv/address.hpp>
#include <sockserv/framing.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <utility>

namespace {

// A connected pair over TCP loopback: the listener is closed once the connection is accepted.
std::pair<sockserv::Socket, sockserv::Socket> connected_pair() {
  sockserv::Socket listener = sockserv::create_server(sockserv::Address::ipv4("127.0.0.1", 0));
  sockserv::Socket client = sockserv::create_connection(listener.getsockname());
  client.set_nodelay(true);  // each small send() leaves at once (no Nagle delay): on loopback it
                             // is in the peer's buffer before send() returns
  return {std::move(client), listener.accept().first};
}

}  // namespace

int main() {
  try {
    auto [client, server] = connected_pair();
    server.settimeout(std::chrono::seconds(5));  // never wait forever in a demo (chapter 6)
    client.settimeout(std::chrono::seconds(5));

    // [snippet:boundaries]
    // Two sends are not two messages: TCP is a stream of bytes, and recv() returns whatever
    // has arrived, up to the size asked for.
    client.send("hello ");
    client.send("world");
    std::cout << "one recv(1024) got: '" << server.recv(1024) << "'\n";
    // ... and a recv() may also return less than one send() sent.
    client.sendall("0123456789");
    std::cout << "recv(4) got: '" << server.recv(4) << "', the rest waits: '" << server.recv(1024)
              << "'\n";
    // [end:boundaries]

    // [snippet:send]
    // send() returns how many bytes the kernel took, which may be fewer than given;
    // sendall() loops until everything is gone (or throws).
    const std::size_t sent = client.send("abc");
    std::cout << "send() took " << sent << " of 3 bytes\n";
    client.sendall(std::string(20000, 'x'));  // sendall: however many send() calls it takes
    // recv_exact(n) is the receiving loop: exactly n bytes, however many recv() calls that takes.
    std::cout << "recv_exact() read " << server.recv_exact(3 + 20000).size() << " bytes\n";
    // [end:send]

    // [snippet:framing]
    // Messages need a protocol: here each is prefixed with its length as 4 bytes.
    const sockserv::LengthPrefixCodec codec(sockserv::LengthFormat::u32_be);
    sockserv::send_frame(client, codec, "first message");
    sockserv::send_frame(client, codec, "");  // an empty message is a message too
    sockserv::send_frame(client, codec, "third");
    sockserv::FrameDecoder decoder(codec);
    for (int i = 0; i < 3; ++i)
      std::cout << "frame: '" << *sockserv::recv_frame(server, decoder) << "'\n";
    // [end:framing]

    // [snippet:eof]
    // When the peer closes, recv() returns an empty string: "the connection has been broken".
    client.close();
    std::cout << "after the client closed, recv() returned " << server.recv(1024).size()
              << " bytes\n";
    // [end:eof]
  } catch (const std::exception& e) {
    std::cerr << "using_a_socket: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
