// SPDX-License-Identifier: MIT
// send_frame() and recv_frame(): the HOWTO's "receive until you have a whole message" loop, with
// the decoder remembering the bytes that belong to the next message.
#include <sockserv/framing.hpp>

#include <sockserv/socket.hpp>

namespace sockserv {
namespace {

// Bytes asked of each recv(): big enough that a stream of small frames costs one syscall per
// many frames, small enough not to matter per connection.
constexpr std::size_t recv_chunk = 16384;

}  // namespace

void send_frame(Socket& sock, const Codec& codec, std::string_view message) {
  sock.sendall(codec.encode(message));
}

// 1. A whole message already buffered (several can arrive in one recv) is returned at once.
// 2. After EOF, next() has already had its final say: nothing more will come.
// 3. Otherwise receive straight into the decoder's buffer; 0 bytes means the peer closed, and
//    the next turn of the loop lets the codec judge what was left (a close-terminated message,
//    a clean end, or a frame cut short: ConnectionError).
std::optional<std::string> recv_frame(Socket& sock, FrameDecoder& decoder) {
  for (;;) {
    if (auto message = decoder.next()) return message;
    if (decoder.at_eof()) return std::nullopt;
    Buffer& buffer = decoder.buffer();
    const std::size_t n = sock.recv_into(buffer.prepare(recv_chunk));
    buffer.commit(n);
    if (n == 0) decoder.feed_eof();
  }
}

}  // namespace sockserv
