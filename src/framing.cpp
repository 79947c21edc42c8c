// SPDX-License-Identifier: MIT
// The codecs of framing.hpp and FrameDecoder.
//
// Every parse() looks only at the front of the buffered bytes and makes one of three decisions:
// a whole frame is there, more bytes are needed, or these bytes can never start a valid frame
// (throw). The last decision is made as early as the bytes allow, so a hostile header costs the
// few bytes of the header, never max_size bytes of buffering.
#include <sockserv/framing.hpp>

#include <sockserv/byteorder.hpp>
#include <sockserv/error.hpp>

#include <cassert>
#include <limits>
#include <stdexcept>
#include <string>

namespace sockserv {
namespace {

[[noreturn]] void decode_error(errc code, std::string_view what) {
  throw_error(make_error_code(code), "decode", what);
}

[[noreturn]] void encode_error(errc code, std::string_view what) {
  throw_error(make_error_code(code), "encode", what);
}

// "length-prefixed frame (announced 5000000 > max 1048576)".
std::string over_limit(std::string_view frame, std::string_view noun, std::uint64_t size,
                       std::uint64_t max) {
  return std::string(frame) + " (" + std::string(noun) + ' ' + std::to_string(size) + " > max " +
         std::to_string(max) + ')';
}

std::string hex_byte(unsigned char byte) {
  constexpr std::string_view digits = "0123456789abcdef";
  return {'0', 'x', digits[byte >> 4], digits[byte & 0xf]};
}

// Bytes in a binary length prefix. Throws std::invalid_argument for ascii, whose width is a
// parameter of the codec, not of the format.
std::size_t binary_width(LengthFormat format) {
  switch (format) {
    case LengthFormat::u16_be:
      return 2;
    case LengthFormat::u32_be:
      return 4;
    case LengthFormat::u64_be:
      return 8;
    case LengthFormat::ascii:
      break;
  }
  throw std::invalid_argument("binary length prefix: LengthFormat::ascii has no fixed width");
}

// The largest length a prefix of this format and width can write.
std::uint64_t prefix_limit(LengthFormat format, std::size_t width) {
  if (format != LengthFormat::ascii) {
    return width >= 8 ? std::numeric_limits<std::uint64_t>::max()
                      : (std::uint64_t{1} << 8 * width) - 1;
  }
  std::uint64_t limit = 1;
  for (std::size_t i = 0; i < width; ++i) limit *= 10;
  return limit - 1;
}

std::size_t clamp_max(std::size_t max_size, std::uint64_t limit) {
  return limit < max_size ? static_cast<std::size_t>(limit) : max_size;
}

std::uint64_t load_binary(LengthFormat format, const char* bytes) {
  switch (format) {
    case LengthFormat::u16_be:
      return load_be16(bytes);
    case LengthFormat::u32_be:
      return load_be32(bytes);
    default:
      return load_be64(bytes);
  }
}

void store_binary(LengthFormat format, char* bytes, std::size_t length) {
  switch (format) {
    case LengthFormat::u16_be:
      store_be16(bytes, static_cast<std::uint16_t>(length));
      break;
    case LengthFormat::u32_be:
      store_be32(bytes, static_cast<std::uint32_t>(length));
      break;
    default:
      store_be64(bytes, static_cast<std::uint64_t>(length));
      break;
  }
}

// Rejects a non-digit among the header bytes received so far, so garbage is refused before the
// whole header has even arrived.
void check_digits(std::string_view header) {
  for (const char c : header) {
    if (c < '0' || c > '9') {
      decode_error(errc::malformed_frame, "length-prefixed frame (byte " +
                                              hex_byte(static_cast<unsigned char>(c)) +
                                              " in an ascii length)");
    }
  }
}

std::uint64_t parse_digits(std::string_view digits) {
  std::uint64_t value = 0;
  for (const char c : digits) value = value * 10 + static_cast<std::uint64_t>(c - '0');
  return value;
}

void write_digits(char* out, std::size_t width, std::size_t value) {
  for (std::size_t i = width; i > 0; --i) {
    out[i - 1] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

const TypePrefixCodec::BodyLength* find_type(
    const std::map<std::uint8_t, TypePrefixCodec::BodyLength>& types, unsigned char type) {
  const auto it = types.find(type);
  return it == types.end() ? nullptr : &it->second;
}

}  // namespace

// ---- Frame --------------------------------------------------------------------------------------

std::string Frame::message(std::string_view wire) const {
  assert(kept_header <= offset && offset + size <= wire_size && wire_size <= wire.size());
  std::string out;
  out.reserve(kept_header + size);
  out.append(wire.substr(0, kept_header));
  out.append(wire.substr(offset, size));
  return out;
}

// ---- Codec --------------------------------------------------------------------------------------

std::optional<Frame> Codec::parse_eof(std::string_view buffered) const {
  if (buffered.empty()) return std::nullopt;
  decode_error(errc::connection_broken, "frame (stream ended with " +
                                            std::to_string(buffered.size()) +
                                            " bytes of an unfinished frame)");
}

// ---- FixedLengthCodec ---------------------------------------------------------------------------

// A zero length would make every empty buffer a frame, and a decoder loop would never end.
FixedLengthCodec::FixedLengthCodec(std::size_t size) : Codec(size) {
  if (size == 0) throw std::invalid_argument("FixedLengthCodec: size must be at least 1");
}

std::string FixedLengthCodec::encode(std::string_view message) const {
  if (message.size() > max_size()) {
    encode_error(errc::frame_too_large,
                 over_limit("fixed-length frame", "message", message.size(), max_size()));
  }
  if (message.size() < max_size()) {
    encode_error(errc::malformed_frame, "fixed-length frame (message " +
                                            std::to_string(message.size()) + " bytes, need " +
                                            std::to_string(max_size()) + ')');
  }
  return std::string(message);
}

std::optional<Frame> FixedLengthCodec::parse(std::string_view buffered, std::size_t&) const {
  if (buffered.size() < max_size()) return std::nullopt;
  return Frame{0, max_size(), max_size(), 0};
}

// ---- DelimiterCodec -----------------------------------------------------------------------------

DelimiterCodec::DelimiterCodec(std::string delimiter, std::size_t max_size)
    : Codec(max_size), delimiter_(std::move(delimiter)) {
  if (delimiter_.empty()) throw std::invalid_argument("DelimiterCodec: empty delimiter");
}

std::string DelimiterCodec::encode(std::string_view message) const {
  if (message.size() > max_size()) {
    encode_error(errc::frame_too_large,
                 over_limit("delimited frame", "message", message.size(), max_size()));
  }
  std::string wire;
  wire.reserve(message.size() + delimiter_.size());
  wire.append(message).append(delimiter_);
  // The decoder ends the frame at the first delimiter, so it must be the one we appended; a tail
  // such as "x\r" before "\r\n", or "xa" before "aa", would end the frame early.
  if (wire.find(delimiter_) != message.size()) {
    encode_error(errc::malformed_frame, "delimited frame (message contains the delimiter)");
  }
  return wire;
}

// `scanned` = bytes already searched without finding a whole delimiter. The next search starts
// delimiter.size() - 1 bytes before that, since a delimiter split across two feeds began there.
std::optional<Frame> DelimiterCodec::parse(std::string_view buffered, std::size_t& scanned) const {
  const std::size_t width = delimiter_.size();
  const std::size_t start = scanned >= width - 1 ? scanned - (width - 1) : 0;
  // A valid delimiter starts at most max_size bytes in: only search that far.
  const std::size_t window = max_size() > std::numeric_limits<std::size_t>::max() - width
                                 ? std::numeric_limits<std::size_t>::max()
                                 : max_size() + width;
  const std::size_t at = buffered.substr(0, window).find(delimiter_, start);
  if (at != std::string_view::npos) return Frame{0, at, at + width, 0};
  if (buffered.size() >= window) {
    decode_error(errc::frame_too_large, "delimited frame (no delimiter within max " +
                                            std::to_string(max_size()) + " bytes)");
  }
  scanned = buffered.size();
  return std::nullopt;
}

// ---- LengthPrefixCodec --------------------------------------------------------------------------

LengthPrefixCodec::LengthPrefixCodec(LengthFormat format, std::size_t max_size)
    : LengthPrefixCodec(format, binary_width(format), max_size) {}

LengthPrefixCodec::LengthPrefixCodec(LengthFormat format, std::size_t header_size,
                                     std::size_t max_size)
    : Codec(clamp_max(max_size, prefix_limit(format, header_size))),
      format_(format),
      header_size_(header_size) {}

LengthPrefixCodec LengthPrefixCodec::ascii(unsigned digits, std::size_t max_size) {
  // 19 digits is the widest decimal length that always fits a 64-bit integer.
  if (digits == 0 || digits > 19) {
    throw std::invalid_argument("LengthPrefixCodec::ascii: digits must be 1..19");
  }
  return LengthPrefixCodec(LengthFormat::ascii, digits, max_size);
}

std::string LengthPrefixCodec::encode(std::string_view message) const {
  if (message.size() > max_size()) {
    encode_error(errc::frame_too_large,
                 over_limit("length-prefixed frame", "message", message.size(), max_size()));
  }
  std::string wire(header_size_, '\0');
  if (format_ == LengthFormat::ascii) {
    write_digits(wire.data(), header_size_, message.size());
  } else {
    store_binary(format_, wire.data(), message.size());
  }
  wire.append(message);
  return wire;
}

std::optional<Frame> LengthPrefixCodec::parse(std::string_view buffered, std::size_t&) const {
  const bool ascii = format_ == LengthFormat::ascii;
  if (ascii) check_digits(buffered.substr(0, header_size_));
  if (buffered.size() < header_size_) return std::nullopt;
  const std::uint64_t length = ascii ? parse_digits(buffered.substr(0, header_size_))
                                     : load_binary(format_, buffered.data());
  if (length > max_size()) {
    decode_error(errc::frame_too_large,
                 over_limit("length-prefixed frame", "announced", length, max_size()));
  }
  const auto size = static_cast<std::size_t>(length);
  if (buffered.size() - header_size_ < size) return std::nullopt;
  return Frame{header_size_, size, header_size_ + size, 0};
}

// ---- TypePrefixCodec ----------------------------------------------------------------------------

TypePrefixCodec::TypePrefixCodec(std::map<std::uint8_t, BodyLength> types, std::size_t max_size)
    : Codec(max_size), types_(std::move(types)) {
  for (const auto& [type, body] : types_) {
    if (const auto* fixed = std::get_if<std::size_t>(&body); fixed && *fixed > max_size) {
      throw std::invalid_argument("TypePrefixCodec: type " + hex_byte(type) +
                                  " has a fixed body longer than max_size");
    }
    if (const auto* format = std::get_if<LengthFormat>(&body)) binary_width(*format);
  }
}

std::string TypePrefixCodec::encode(std::string_view message) const {
  if (message.empty()) encode_error(errc::malformed_frame, "typed frame (no type byte)");
  const auto* body = find_type(types_, static_cast<unsigned char>(message[0]));
  if (!body) {
    encode_error(errc::malformed_frame, "typed frame (unknown type byte " +
                                            hex_byte(static_cast<unsigned char>(message[0])) + ')');
  }
  const std::string_view payload = message.substr(1);
  if (const auto* fixed = std::get_if<std::size_t>(body)) {
    if (payload.size() != *fixed) {
      encode_error(errc::malformed_frame, "typed frame (body " + std::to_string(payload.size()) +
                                              " bytes, type needs " + std::to_string(*fixed) + ')');
    }
    return std::string(message);
  }
  const auto format = std::get<LengthFormat>(*body);
  const std::size_t width = binary_width(format);
  const std::size_t max = clamp_max(max_size(), prefix_limit(format, width));
  if (payload.size() > max) {
    encode_error(errc::frame_too_large, over_limit("typed frame", "body", payload.size(), max));
  }
  std::string wire(1 + width, message[0]);
  store_binary(format, wire.data() + 1, payload.size());
  wire.append(payload);
  return wire;
}

std::optional<Frame> TypePrefixCodec::parse(std::string_view buffered, std::size_t&) const {
  if (buffered.empty()) return std::nullopt;
  const auto type = static_cast<unsigned char>(buffered[0]);
  const auto* body = find_type(types_, type);
  if (!body)
    decode_error(errc::malformed_frame, "typed frame (unknown type byte " + hex_byte(type) + ')');
  const std::size_t available = buffered.size() - 1;
  if (const auto* fixed = std::get_if<std::size_t>(body)) {
    if (available < *fixed) return std::nullopt;
    return Frame{1, *fixed, 1 + *fixed, 1};
  }
  const auto format = std::get<LengthFormat>(*body);
  const std::size_t width = binary_width(format);
  if (available < width) return std::nullopt;
  const std::uint64_t length = load_binary(format, buffered.data() + 1);
  if (length > max_size()) {
    decode_error(errc::frame_too_large, over_limit("typed frame", "announced", length, max_size()));
  }
  const auto size = static_cast<std::size_t>(length);
  if (available - width < size) return std::nullopt;
  return Frame{1 + width, size, 1 + width + size, 1};
}

// ---- CloseTerminatedCodec -----------------------------------------------------------------------

CloseTerminatedCodec::CloseTerminatedCodec(std::size_t max_size) : Codec(max_size) {}

std::string CloseTerminatedCodec::encode(std::string_view message) const {
  if (message.size() > max_size()) {
    encode_error(errc::message_too_large,
                 over_limit("close-terminated message", "message", message.size(), max_size()));
  }
  return std::string(message);
}

std::optional<Frame> CloseTerminatedCodec::parse(std::string_view buffered, std::size_t&) const {
  if (buffered.size() > max_size()) {
    decode_error(errc::message_too_large,
                 over_limit("close-terminated message", "received", buffered.size(), max_size()));
  }
  return std::nullopt;
}

std::optional<Frame> CloseTerminatedCodec::parse_eof(std::string_view buffered) const {
  std::size_t unused = 0;
  parse(buffered, unused);  // the limit still applies to the last bytes received
  return Frame{0, buffered.size(), buffered.size(), 0};
}

// ---- FrameDecoder -------------------------------------------------------------------------------

// parse() first, even after EOF: whole frames that arrived with the close are still delivered.
// parse_eof() runs once; if it throws, done_ stays false so every later call throws again.
std::optional<std::string> FrameDecoder::next() {
  if (done_) return std::nullopt;
  std::optional<Frame> frame = codec_->parse(buffer_.view(), scanned_);
  if (!frame) {
    if (!eof_) return std::nullopt;
    frame = codec_->parse_eof(buffer_.view());
    done_ = true;
    if (!frame) return std::nullopt;
  }
  std::string message = frame->message(buffer_.view());
  buffer_.consume(frame->wire_size);
  scanned_ = 0;
  return message;
}

}  // namespace sockserv
