// SPDX-License-Identifier: MIT
// The Socket Programming HOWTO, "Using a Socket": messages that "indicate how long they are (much
// better)", the enhancement the HOWTO leaves as an exercise:
//
//   "Prefixing the message with its length (say, as 5 numeric characters) gets more complex,
//    because (believe it or not), you may not get all 5 characters in one recv. [...] you'll
//    need two recv loops - the first to determine the length, the second to get the data part
//    of the message."
//
// and "if your conversational protocol allows multiple messages to be sent back to back [...]
// you may end up reading the start of a following message. You'll need to put that aside and
// hold onto it, until it's needed." LengthPrefixCodec::ascii(5) is the "5 numeric characters"
// format; a FrameDecoder does both loops and keeps the start of the next message.
//
// The program runs both ends over loopback: the client sends four messages back to back in one
// sendall() (one of them 60000 bytes, far more than one recv brings), the server answers each.
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/framing.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

std::mutex print_mutex;
void say(const std::string& line) {
  const std::lock_guard lock(print_mutex);
  std::cout << line << std::endl;
}

// "00005hello": five decimal digits of length, then the message; at most 99999 bytes.
const sockserv::LengthPrefixCodec codec = sockserv::LengthPrefixCodec::ascii(5);

void serve(sockserv::Socket& listener) {
  try {
    auto [conn, peer] = listener.accept();
    conn.settimeout(std::chrono::seconds(10));
    sockserv::FrameDecoder decoder(codec);  // holds what arrived beyond the current message
    // recv_frame() returns nullopt when the client closes cleanly between two messages.
    while (auto message = sockserv::recv_frame(conn, decoder)) {
      say("server: message of " + std::to_string(message->size()) +
          " bytes: " + message->substr(0, 20));
      sockserv::send_frame(conn, codec, "got " + std::to_string(message->size()) + " bytes");
    }
    say("server: client closed after its last message");
  } catch (const std::exception& e) {
    say(std::string("server: ") + e.what());
  }
}

}  // namespace

int main() {
  try {
    sockserv::Socket listener = sockserv::create_server(sockserv::Address::ipv4("127.0.0.1", 0));
    listener.settimeout(std::chrono::seconds(10));
    std::jthread server(serve, std::ref(listener));

    sockserv::Socket client = sockserv::create_connection(listener.getsockname());
    client.settimeout(std::chrono::seconds(10));
    const std::vector<std::string> messages = {"hello", "", std::string(60000, 'L'), "the end"};
    std::string wire;
    for (const auto& m : messages) wire += codec.encode(m);
    say("client: wire form of the first message: " + codec.encode(messages[0]));
    client.sendall(wire);  // all four back to back: the server must split them itself

    sockserv::FrameDecoder replies(codec);
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const auto reply = sockserv::recv_frame(client, replies);
      say("client: reply " + std::to_string(i + 1) + ": " + reply.value_or("<closed>"));
    }
    client.close();
    server.join();

    // A header that is not five digits is refused: the stream cannot be trusted any more.
    sockserv::FrameDecoder bad(codec);
    bad.feed("0x123");
    try {
      (void)bad.next();
    } catch (const sockserv::SocketError& e) {
      say(std::string("malformed header: ") + e.what());
    }
  } catch (const std::exception& e) {
    std::cerr << "length_prefixed: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
