// SPDX-License-Identifier: MIT
// The Socket Programming HOWTO, "Using a Socket": delimited messages ("or be delimited (shrug)"),
// the other enhancement left as an exercise:
//
//   "If you decide to go the delimited route, you'll be receiving in some arbitrary chunk size,
//    (4096 or 8192 is frequently a good match for network buffer sizes), and scanning what
//    you've received for a delimiter."
//
// The server below does exactly that with a DelimiterCodec("\r\n") and a FrameDecoder: it
// receives in chunks (deliberately tiny, 7 bytes, so that messages and even the two-byte
// delimiter are split across recv() calls), feeds each chunk to the decoder, and takes out every
// whole message. The rest of a message waits in the decoder for the next chunk.
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

namespace {

std::mutex print_mutex;
void say(const std::string& line) {
  const std::lock_guard lock(print_mutex);
  std::cout << line << std::endl;
}

// Lines end with CRLF, as in SMTP or HTTP headers. A line may be at most 1000 bytes: a peer that
// never sends the delimiter gets an error, not all of our memory.
const sockserv::DelimiterCodec codec("\r\n", 1000);

void serve(sockserv::Socket& listener) {
  try {
    auto [conn, peer] = listener.accept();
    conn.settimeout(std::chrono::seconds(10));
    sockserv::FrameDecoder decoder(codec);
    std::size_t count = 0;
    for (;;) {
      const std::string chunk = conn.recv(7);  // "some arbitrary chunk size"
      if (chunk.empty()) {
        decoder.feed_eof();  // the client closed: whatever is left must be a whole message
      } else {
        decoder.feed(chunk);
      }
      while (auto message = decoder.next()) {
        ++count;
        say("server: message " + std::to_string(count) + ": '" + *message + "'");
        conn.sendall(codec.encode("OK " + std::to_string(count)));
      }
      if (chunk.empty()) break;
    }
    say("server: end of stream after " + std::to_string(count) + " messages");
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
    // Three messages back to back in one send, then a fourth in two pieces.
    client.sendall(codec.encode("HELO example.org") + codec.encode("") +
                   codec.encode("MAIL FROM:<howto@example.org>"));
    client.sendall("QU");
    client.sendall("IT\r\n");
    client.shutdown(SHUT_WR);  // no more messages; the replies can still come back

    sockserv::FrameDecoder replies(codec);
    while (auto reply = sockserv::recv_frame(client, replies))
      say("client: reply '" + *reply + "'");
    server.join();

    // A message may not contain the delimiter: it would arrive as two messages.
    try {
      (void)codec.encode("two\r\nlines");
    } catch (const sockserv::SocketError& e) {
      say(std::string("refused to encode: ") + e.what());
    }
  } catch (const std::exception& e) {
    std::cerr << "delimited: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
