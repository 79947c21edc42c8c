// SPDX-License-Identifier: MIT
// Framing: the HOWTO's ways to know where a message ends on a byte stream.
//
//   "messages must either be fixed length (yuck), or be delimited (shrug), or indicate how long
//    they are (much better), or end by shutting down the connection."
//
// A Codec is the stateless description of one wire format: encode() turns a message into bytes,
// parse() finds the first whole message at the front of received bytes. A FrameDecoder holds the
// state of one stream: feed it bytes in any split and take whole messages out with next(), in
// order; the start of the next message waits in its buffer. Every codec has a max_size, so an
// oversized or malformed header is an error (SocketError with errc::frame_too_large or
// errc::malformed_frame), never an unbounded allocation.
//
//   codec                      wire form of "hello"
//   FixedLengthCodec(5)        hello
//   DelimiterCodec("\n")       hello\n
//   LengthPrefixCodec(u32)     00 00 00 05 h e l l o
//   LengthPrefixCodec::ascii(5) 00005hello           (the HOWTO's "5 numeric characters")
//   TypePrefixCodec            T + body, the type byte T decides the body's length
//   CloseTerminatedCodec       hello<EOF>            (one message per connection)
#pragma once

#include <sockserv/buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace sockserv {

class Socket;

// Where a message sits in the received bytes: payload [offset, offset + size), and the whole
// frame (header, payload, trailer) is the first wire_size bytes. The message is the frame's first
// kept_header bytes followed by the payload; only TypePrefixCodec keeps a header byte (its type).
struct Frame {
  std::size_t offset = 0;
  std::size_t size = 0;
  std::size_t wire_size = 0;
  std::size_t kept_header = 0;

  // The message, copied out of the received bytes `wire` that this frame was parsed from.
  std::string message(std::string_view wire) const;
};

inline constexpr std::size_t default_max_frame = std::size_t{1} << 20;  // 1 MiB

class Codec {
 public:
  virtual ~Codec() = default;

  // The wire form of `message`. Throws SocketError: errc::frame_too_large when it is longer than
  // max_size() (errc::message_too_large for CloseTerminatedCodec), errc::malformed_frame when the
  // format cannot carry it (wrong size for a fixed length, contains the delimiter, unknown type).
  virtual std::string encode(std::string_view message) const = 0;

  // The first whole frame at the front of `buffered`, or nullopt when more bytes are needed.
  // `scanned` carries, between calls on a growing buffer, how many leading bytes are known not to
  // complete a frame, so a delimiter search resumes where it stopped (no quadratic rescans).
  // Throws SocketError(errc::frame_too_large | errc::malformed_frame).
  virtual std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const = 0;

  // Called once the peer has closed and parse() has taken every whole frame, with the bytes left
  // over (FrameDecoder calls it once per stream). The default: nothing left is a clean end
  // (nullopt); a partial frame throws ConnectionError(errc::connection_broken).
  virtual std::optional<Frame> parse_eof(std::string_view buffered) const;

  // The largest message (payload) the codec accepts, after clamping to what its header can
  // express (e.g. 65535 for LengthFormat::u16_be, 99999 for ascii(5)).
  std::size_t max_size() const noexcept { return max_size_; }

 protected:
  explicit Codec(std::size_t max_size) noexcept : max_size_(max_size) {}

 private:
  std::size_t max_size_;
};

// Every message is exactly `size` bytes. Throws std::invalid_argument when `size` is 0.
class FixedLengthCodec final : public Codec {
 public:
  explicit FixedLengthCodec(std::size_t size);
  std::string encode(std::string_view message) const override;
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;
};

// Messages end with `delimiter` (not part of the message); max_size bounds the message without
// the delimiter. A message may not contain the delimiter (nor end with a part of it that would
// complete the delimiter early); encode() refuses one that does (errc::malformed_frame). When no
// delimiter appears within max_size bytes, parse() throws errc::frame_too_large as soon as that
// is certain. Throws std::invalid_argument for an empty delimiter.
class DelimiterCodec final : public Codec {
 public:
  explicit DelimiterCodec(std::string delimiter = "\n", std::size_t max_size = default_max_frame);
  std::string encode(std::string_view message) const override;
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;

 private:
  std::string delimiter_;
};

// How a length prefix is written: binary big-endian integers, or N ASCII decimal digits.
enum class LengthFormat { u16_be, u32_be, u64_be, ascii };

// A header giving the payload's length, then the payload. A header announcing more than
// max_size() throws errc::frame_too_large as soon as the header has arrived, before any of the
// body is buffered; a non-digit in an ascii header throws errc::malformed_frame.
class LengthPrefixCodec final : public Codec {
 public:
  // A binary prefix. Throws std::invalid_argument for LengthFormat::ascii (use ascii()).
  explicit LengthPrefixCodec(LengthFormat format, std::size_t max_size = default_max_frame);
  // The HOWTO's "N numeric characters": zero-padded decimal digits, e.g. ascii(5) -> "00042".
  // Throws std::invalid_argument unless 1 <= digits <= 19 (the widest that fits 64 bits).
  static LengthPrefixCodec ascii(unsigned digits, std::size_t max_size = default_max_frame);

  std::string encode(std::string_view message) const override;
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;
  std::size_t header_size() const noexcept { return header_size_; }

 private:
  LengthPrefixCodec(LengthFormat format, std::size_t header_size, std::size_t max_size);

  LengthFormat format_;
  std::size_t header_size_;
};

// A type byte, then a body whose length the type decides: a fixed number of bytes, or a length
// prefix of its own. The decoded message keeps its type byte as message[0]; encode() takes the
// same form. An unknown type byte is errc::malformed_frame. max_size bounds the body (the type
// byte not counted); a nested length prefix is binary (u16_be, u32_be or u64_be). Throws
// std::invalid_argument for an ascii nested prefix or a fixed body longer than max_size.
class TypePrefixCodec final : public Codec {
 public:
  using BodyLength = std::variant<std::size_t, LengthFormat>;
  explicit TypePrefixCodec(std::map<std::uint8_t, BodyLength> types,
                           std::size_t max_size = default_max_frame);
  std::string encode(std::string_view message) const override;
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;

 private:
  std::map<std::uint8_t, BodyLength> types_;
};

// One message per connection: everything until the peer closes (at most max_size bytes). parse()
// never finds a frame; it throws errc::message_too_large once more than max_size bytes are
// buffered. At EOF the whole buffer is the message, even an empty one (a close-terminated body
// may legitimately be empty), and it is delivered exactly once.
class CloseTerminatedCodec final : public Codec {
 public:
  explicit CloseTerminatedCodec(std::size_t max_size = default_max_frame);
  std::string encode(std::string_view message) const override;
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;
  std::optional<Frame> parse_eof(std::string_view buffered) const override;
};

// The state of one incoming stream under one codec. The codec must outlive the decoder.
// Not thread-safe.
class FrameDecoder {
 public:
  explicit FrameDecoder(const Codec& codec) noexcept : codec_(&codec) {}

  // Appends received bytes.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // Marks the end of the stream (the peer closed).
  void feed_eof() noexcept { eof_ = true; }

  // The next whole message, or nullopt when more bytes are needed (or the stream has ended
  // cleanly; after EOF and the final message, every call returns nullopt). Throws SocketError for
  // a malformed or oversized frame, ConnectionError when the stream ended inside a frame; the
  // error repeats on later calls, as the stream cannot be resynchronised.
  std::optional<std::string> next();

  // Direct access for zero-copy receive: recv() into prepare(n), then commit(k).
  Buffer& buffer() noexcept { return buffer_; }
  bool at_eof() const noexcept { return eof_; }
  std::size_t buffered() const noexcept { return buffer_.size(); }

 private:
  const Codec* codec_;
  Buffer buffer_;
  std::size_t scanned_ = 0;
  bool eof_ = false;
  bool done_ = false;  // parse_eof() has run: the stream has no more messages
};

// Blocking helpers over a Socket (the HOWTO's receive loop, once per message).
// send_frame: sendall(codec.encode(message)). recv_frame: the next message, receiving as needed;
// nullopt when the peer closed cleanly between messages.
void send_frame(Socket& sock, const Codec& codec, std::string_view message);
std::optional<std::string> recv_frame(Socket& sock, FrameDecoder& decoder);

}  // namespace sockserv
