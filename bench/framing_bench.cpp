// SPDX-License-Identifier: MIT
// Decode and encode throughput of every codec, for 64-byte and 4 KiB messages. Decoding feeds
// about 1 MiB of frames in 16 KiB chunks, the size recv_frame() asks of each recv(), so the
// numbers include the buffer's copies and the per-chunk rescans a real connection pays.
#include <sockserv/framing.hpp>

#include <benchmark/benchmark.h>

#include <memory>
#include <string>

namespace {

using namespace sockserv;

enum class Kind { fixed, lines, crlf, u32, ascii10, typed, close };

constexpr std::size_t chunk = 16384;
constexpr std::size_t stream_bytes = std::size_t{1} << 20;

std::unique_ptr<Codec> make_codec(Kind kind, std::size_t message_size) {
  switch (kind) {
    case Kind::fixed:
      return std::make_unique<FixedLengthCodec>(message_size);
    case Kind::lines:
      return std::make_unique<DelimiterCodec>("\n");
    case Kind::crlf:
      return std::make_unique<DelimiterCodec>("\r\n");
    case Kind::u32:
      return std::make_unique<LengthPrefixCodec>(LengthFormat::u32_be);
    case Kind::ascii10:
      return std::make_unique<LengthPrefixCodec>(LengthPrefixCodec::ascii(10));
    case Kind::typed:
      return std::make_unique<TypePrefixCodec>(std::map<std::uint8_t, TypePrefixCodec::BodyLength>{
          {'M', LengthFormat::u32_be}, {'P', std::size_t{0}}});
    case Kind::close:
      return std::make_unique<CloseTerminatedCodec>();
  }
  return nullptr;
}

// A message of `size` bytes that every codec accepts (no delimiter bytes; a type byte first).
std::string make_message(Kind kind, std::size_t size) {
  std::string message(size, 'x');
  for (std::size_t i = 0; i < size; i += 7) message[i] = static_cast<char>('a' + i % 26);
  if (kind == Kind::typed) message[0] = 'M';
  return message;
}

void BM_Decode(benchmark::State& state, Kind kind) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto codec = make_codec(kind, size);
  const std::string message = make_message(kind, size);
  // A close-terminated stream carries one message; the others about 1 MiB of frames.
  const std::size_t count = kind == Kind::close ? 1 : stream_bytes / size;
  std::string wire;
  for (std::size_t i = 0; i < count; ++i) wire += codec->encode(message);

  for (auto _ : state) {
    FrameDecoder decoder(*codec);
    std::size_t got = 0;
    for (std::size_t pos = 0; pos < wire.size(); pos += chunk) {
      decoder.feed(std::string_view(wire).substr(pos, chunk));
      while (auto m = decoder.next()) benchmark::DoNotOptimize(m->data()), ++got;
    }
    decoder.feed_eof();
    while (auto m = decoder.next()) benchmark::DoNotOptimize(m->data()), ++got;
    if (got != count) state.SkipWithError("lost messages");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
}

void BM_Encode(benchmark::State& state, Kind kind) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto codec = make_codec(kind, size);
  const std::string message = make_message(kind, size);
  for (auto _ : state) {
    std::string wire = codec->encode(message);
    benchmark::DoNotOptimize(wire.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

#define SOCKSERV_CODEC_BENCH(name, kind)                        \
  BENCHMARK_CAPTURE(BM_Decode, name, kind)->Arg(64)->Arg(4096); \
  BENCHMARK_CAPTURE(BM_Encode, name, kind)->Arg(64)->Arg(4096)

SOCKSERV_CODEC_BENCH(fixed, Kind::fixed);
SOCKSERV_CODEC_BENCH(delimiter_lf, Kind::lines);
SOCKSERV_CODEC_BENCH(delimiter_crlf, Kind::crlf);
SOCKSERV_CODEC_BENCH(length_u32, Kind::u32);
SOCKSERV_CODEC_BENCH(length_ascii10, Kind::ascii10);
SOCKSERV_CODEC_BENCH(type_prefix, Kind::typed);
SOCKSERV_CODEC_BENCH(close_terminated, Kind::close);

}  // namespace
