// SPDX-License-Identifier: MIT
/// @file
/// Framing: the HOWTO's ways to know where a message ends on a byte stream.
///
/// > "messages must either be fixed length (yuck), or be delimited (shrug), or indicate how long
/// > they are (much better), or end by shutting down the connection."
///
/// A Codec is the stateless description of one wire format: encode() turns a message into bytes,
/// parse() finds the first whole message at the front of received bytes. A FrameDecoder holds the
/// state of one stream: feed it bytes in any split and take whole messages out with next(), in
/// order; the start of the next message waits in its buffer. Every codec has a max_size, so an
/// oversized or malformed header is an error (SocketError with errc::frame_too_large or
/// errc::malformed_frame), never an unbounded allocation.
///
/// ```
///   codec                      wire form of "hello"
///   FixedLengthCodec(5)        hello
///   DelimiterCodec("\n")       hello\n
///   LengthPrefixCodec(u32)     00 00 00 05 h e l l o
///   LengthPrefixCodec::ascii(5) 00005hello           (the HOWTO's "5 numeric characters")
///   TypePrefixCodec            T + body, the type byte T decides the body's length
///   CloseTerminatedCodec       hello<EOF>            (one message per connection)
/// ```
///
/// Python has no framing module: this is the HOWTO's prose as code. Codecs are immutable and may
/// be shared by any number of threads; a FrameDecoder belongs to one stream and one thread.
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

/// Where a message sits in the received bytes: payload [offset, offset + size), and the whole
/// frame (header, payload, trailer) is the first wire_size bytes. The message is the frame's first
/// kept_header bytes followed by the payload; only TypePrefixCodec keeps a header byte (its type).
struct Frame {
  std::size_t offset = 0;       ///< where the payload starts
  std::size_t size = 0;         ///< the payload's length
  std::size_t wire_size = 0;    ///< the whole frame's length: what to consume
  std::size_t kept_header = 0;  ///< leading header bytes that belong to the message

  /// The message, copied out of the received bytes `wire` that this frame was parsed from.
  std::string message(std::string_view wire) const;
};

/// The codecs' default max_size: 1 MiB.
inline constexpr std::size_t default_max_frame = std::size_t{1} << 20;  // 1 MiB

/// One wire format, stateless: encode() a message, parse() the first frame of received bytes.
/// Subclass it for a format of your own.
/// @threadsafety Immutable after construction: one codec may serve any number of streams and
/// threads.
class Codec {
 public:
  /// Codecs are used through references to this base.
  virtual ~Codec() = default;

  /// The wire form of `message`.
  /// @throws SocketError with errc::frame_too_large when it is longer than max_size()
  ///         (errc::message_too_large for CloseTerminatedCodec), errc::malformed_frame when the
  ///         format cannot carry it (wrong size for a fixed length, contains the delimiter,
  ///         unknown type).
  virtual std::string encode(std::string_view message) const = 0;

  /// The first whole frame at the front of `buffered`, or nullopt when more bytes are needed.
  /// `scanned` carries, between calls on a growing buffer, how many leading bytes are known not to
  /// complete a frame, so a delimiter search resumes where it stopped (no quadratic rescans).
  /// @throws SocketError with errc::frame_too_large or errc::malformed_frame, as soon as the
  ///         bytes show it.
  virtual std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const = 0;

  /// Called once the peer has closed and parse() has taken every whole frame, with the bytes left
  /// over (FrameDecoder calls it once per stream). The default: nothing left is a clean end
  /// (nullopt).
  /// @throws ConnectionError with errc::connection_broken for a partial frame (the default).
  virtual std::optional<Frame> parse_eof(std::string_view buffered) const;

  /// The largest message (payload) the codec accepts, after clamping to what its header can
  /// express (e.g. 65535 for LengthFormat::u16_be, 99999 for ascii(5)).
  std::size_t max_size() const noexcept { return max_size_; }

 protected:
  /// For subclasses: the codec's limit.
  explicit Codec(std::size_t max_size) noexcept : max_size_(max_size) {}

 private:
  std::size_t max_size_;
};

/// Every message is exactly `size` bytes (max_size() is `size`). encode() refuses a message
/// of another length: errc::frame_too_large when longer, errc::malformed_frame when shorter.
class FixedLengthCodec final : public Codec {
 public:
  /// A codec for messages of `size` bytes.
  /// @throws std::invalid_argument when `size` is 0.
  explicit FixedLengthCodec(std::size_t size);
  /// The message itself. Throws as Codec::encode.
  std::string encode(std::string_view message) const override;
  /// The first `size` bytes, once they are there. Never throws.
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;
};

/// Messages end with `delimiter` (not part of the message); max_size bounds the message without
/// the delimiter. A message may not contain the delimiter (nor end with a part of it that would
/// complete the delimiter early); encode() refuses one that does (errc::malformed_frame). When no
/// delimiter appears within max_size bytes, parse() throws errc::frame_too_large as soon as that
/// is certain.
class DelimiterCodec final : public Codec {
 public:
  /// A codec for messages ended by `delimiter` (a newline by default).
  /// @throws std::invalid_argument for an empty delimiter.
  explicit DelimiterCodec(std::string delimiter = "\n", std::size_t max_size = default_max_frame);
  /// The message and the delimiter. Throws as Codec::encode.
  std::string encode(std::string_view message) const override;
  /// Finds the first delimiter, resuming the search at `scanned`. Throws as Codec::parse.
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;

 private:
  std::string delimiter_;
};

/// How a length prefix is written: binary big-endian integers (2, 4 or 8 bytes), or N ASCII
/// decimal digits.
enum class LengthFormat { u16_be, u32_be, u64_be, ascii };

/// A header giving the payload's length, then the payload. A header announcing more than
/// max_size() throws errc::frame_too_large as soon as the header has arrived, before any of the
/// body is buffered; a non-digit in an ascii header throws errc::malformed_frame.
class LengthPrefixCodec final : public Codec {
 public:
  /// A binary prefix; `max_size` is clamped to what the prefix can express.
  /// @throws std::invalid_argument for LengthFormat::ascii (use ascii()).
  explicit LengthPrefixCodec(LengthFormat format, std::size_t max_size = default_max_frame);
  /// The HOWTO's "N numeric characters": zero-padded decimal digits, e.g. ascii(5) -> "00042".
  /// @throws std::invalid_argument unless 1 <= digits <= 19 (the widest that fits 64 bits).
  static LengthPrefixCodec ascii(unsigned digits, std::size_t max_size = default_max_frame);

  /// The header and the message. Throws as Codec::encode.
  std::string encode(std::string_view message) const override;
  /// Reads the header, then waits for the whole payload. Throws as Codec::parse.
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;
  /// The prefix's length in bytes (2, 4, 8, or the ascii digits).
  std::size_t header_size() const noexcept { return header_size_; }

 private:
  LengthPrefixCodec(LengthFormat format, std::size_t header_size, std::size_t max_size);

  LengthFormat format_;
  std::size_t header_size_;
};

/// A type byte, then a body whose length the type decides: a fixed number of bytes, or a length
/// prefix of its own. The decoded message keeps its type byte as message[0]; encode() takes the
/// same form. An unknown type byte is errc::malformed_frame. max_size bounds the body (the type
/// byte not counted); a nested length prefix is binary (u16_be, u32_be or u64_be).
class TypePrefixCodec final : public Codec {
 public:
  /// A type's body: a fixed number of bytes, or a binary length prefix.
  using BodyLength = std::variant<std::size_t, LengthFormat>;
  /// A codec for the types in `types`.
  /// @throws std::invalid_argument for an ascii nested prefix or a fixed body longer than
  ///         max_size.
  explicit TypePrefixCodec(std::map<std::uint8_t, BodyLength> types,
                           std::size_t max_size = default_max_frame);
  /// `message` is the type byte and the body. Throws as Codec::encode (an empty message or an
  /// unknown type: errc::malformed_frame).
  std::string encode(std::string_view message) const override;
  /// Reads the type byte, then the body its type describes. Throws as Codec::parse.
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;

 private:
  std::map<std::uint8_t, BodyLength> types_;
};

/// One message per connection: everything until the peer closes (at most max_size bytes). parse()
/// never finds a frame; it throws errc::message_too_large once more than max_size bytes are
/// buffered. At EOF the whole buffer is the message, even an empty one (a close-terminated body
/// may legitimately be empty), and it is delivered exactly once.
class CloseTerminatedCodec final : public Codec {
 public:
  /// A codec for one message of at most `max_size` bytes.
  explicit CloseTerminatedCodec(std::size_t max_size = default_max_frame);
  /// The message itself; the sender then closes (or shuts down writing).
  /// @throws SocketError with errc::message_too_large past max_size().
  std::string encode(std::string_view message) const override;
  /// Never a frame; checks the limit.
  /// @throws SocketError with errc::message_too_large past max_size().
  std::optional<Frame> parse(std::string_view buffered, std::size_t& scanned) const override;
  /// The whole buffer as the message.
  /// @throws SocketError with errc::message_too_large past max_size().
  std::optional<Frame> parse_eof(std::string_view buffered) const override;
};

/// The state of one incoming stream under one codec: bytes in, whole messages out. The codec
/// must outlive the decoder.
/// @threadsafety Not thread-safe.
class FrameDecoder {
 public:
  /// A decoder for a new stream in `codec`'s format.
  explicit FrameDecoder(const Codec& codec) noexcept : codec_(&codec) {}

  /// Appends received bytes.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  /// Marks the end of the stream (the peer closed).
  void feed_eof() noexcept { eof_ = true; }

  /// The next whole message, or nullopt when more bytes are needed (or the stream has ended
  /// cleanly; after EOF and the final message, every call returns nullopt). The error repeats on
  /// later calls, as the stream cannot be resynchronised.
  /// @throws SocketError for a malformed or oversized frame (the codec's parse()).
  /// @throws ConnectionError with errc::connection_broken when the stream ended inside a frame.
  std::optional<std::string> next();

  /// Direct access for zero-copy receive: recv() into prepare(n), then commit(k).
  Buffer& buffer() noexcept { return buffer_; }
  /// True after feed_eof().
  bool at_eof() const noexcept { return eof_; }
  /// Bytes received and not yet taken as messages.
  std::size_t buffered() const noexcept { return buffer_.size(); }

 private:
  const Codec* codec_;
  Buffer buffer_;
  std::size_t scanned_ = 0;
  bool eof_ = false;
  bool done_ = false;  // parse_eof() has run: the stream has no more messages
};

/// sendall(codec.encode(message)): one whole message, on a blocking socket.
/// @throws SocketError from encode() (a message the format cannot carry).
/// @throws ConnectionError, TimeoutError or SocketError, as Socket::sendall.
void send_frame(Socket& sock, const Codec& codec, std::string_view message);
/// The next message, receiving into `decoder` as needed (the HOWTO's receive loop, once per
/// message); nullopt when the peer closed cleanly between messages.
/// @throws SocketError or ConnectionError, as FrameDecoder::next.
/// @throws ConnectionError, TimeoutError or SocketError, as Socket::recv_into.
std::optional<std::string> recv_frame(Socket& sock, FrameDecoder& decoder);

}  // namespace sockserv
