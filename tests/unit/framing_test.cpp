// SPDX-License-Identifier: MIT
// Codec behaviour one case at a time: wire forms, the limits, malformed headers, EOF handling and
// encode() refusals, send_frame()/recv_frame() over a socketpair. The random round trips under
// random splits are in framing_random_test.cpp.
#include <sockserv/framing.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::string_literals;

// Passes only when `f` throws exactly an E (or subclass) carrying `code`; nothing thrown fails.
template <class E = SocketError, class F>
testing::AssertionResult throws_code(F&& f, errc code) {
  try {
    f();
  } catch (const E& e) {
    if (e.code() == code) return testing::AssertionSuccess();
    return testing::AssertionFailure() << "wrong code: " << e.what();
  } catch (const std::exception& e) {
    return testing::AssertionFailure() << "wrong exception type: " << e.what();
  }
  return testing::AssertionFailure() << "nothing was thrown";
}

// Feeds `wire` in one piece and collects every message next() gives.
std::vector<std::string> decode(const Codec& codec, std::string_view wire, bool eof = true) {
  FrameDecoder decoder(codec);
  decoder.feed(wire);
  if (eof) decoder.feed_eof();
  std::vector<std::string> out;
  while (auto m = decoder.next()) out.push_back(*m);
  return out;
}

const TypePrefixCodec& typed_codec() {
  static const TypePrefixCodec codec({{'P', std::size_t{0}},
                                      {'F', std::size_t{3}},
                                      {'S', LengthFormat::u16_be},
                                      {'L', LengthFormat::u32_be}},
                                     1000);
  return codec;
}

// ---- Wire forms ---------------------------------------------------------------------------------

TEST(FramingTest, EncodesTheDocumentedWireForms) {
  EXPECT_EQ(FixedLengthCodec(5).encode("hello"), "hello");
  EXPECT_EQ(DelimiterCodec("\r\n").encode("hello"), "hello\r\n");
  EXPECT_EQ(LengthPrefixCodec(LengthFormat::u16_be).encode("hello"), "\0\5hello"s);
  EXPECT_EQ(LengthPrefixCodec(LengthFormat::u32_be).encode("hello"), "\0\0\0\5hello"s);
  EXPECT_EQ(LengthPrefixCodec(LengthFormat::u64_be).encode("hi"), "\0\0\0\0\0\0\0\2hi"s);
  EXPECT_EQ(LengthPrefixCodec::ascii(5).encode("hello"), "00005hello");
  EXPECT_EQ(LengthPrefixCodec::ascii(3).encode(""), "000");
  EXPECT_EQ(typed_codec().encode("P"), "P");
  EXPECT_EQ(typed_codec().encode("Fabc"), "Fabc");
  EXPECT_EQ(typed_codec().encode("Shi"), "S\0\2hi"s);
  EXPECT_EQ(typed_codec().encode("L"), "L\0\0\0\0"s);
  EXPECT_EQ(CloseTerminatedCodec().encode("hello"), "hello");
}

TEST(FramingTest, LengthPrefixUsesBigEndianForMultiByteLengths) {
  const std::string message(0x0102, 'x');
  const std::string wire = LengthPrefixCodec(LengthFormat::u32_be).encode(message);
  EXPECT_EQ(wire.substr(0, 4), "\0\0\x01\x02"s);
  EXPECT_EQ(decode(LengthPrefixCodec(LengthFormat::u32_be), wire), std::vector{message});
}

TEST(FramingTest, TypePrefixKeepsTheTypeByteInTheMessage) {
  const auto wire = "P" + "Fxyz"s + "S\0\3abc"s + "L\0\0\0\0"s;
  EXPECT_EQ(decode(typed_codec(), wire), (std::vector<std::string>{"P", "Fxyz", "Sabc", "L"}));
}

TEST(FramingTest, FrameMessageIsTheKeptHeaderThenThePayload) {
  EXPECT_EQ((Frame{3, 2, 6, 1}.message("T..ab!")), "Tab");
  EXPECT_EQ((Frame{2, 3, 5, 0}.message("..abc")), "abc");
}

TEST(FramingTest, MaxSizeIsClampedToWhatTheHeaderCanExpress) {
  EXPECT_EQ(LengthPrefixCodec(LengthFormat::u16_be, 1 << 20).max_size(), 65535u);
  EXPECT_EQ(LengthPrefixCodec(LengthFormat::u32_be, 1000).max_size(), 1000u);
  EXPECT_EQ(LengthPrefixCodec::ascii(3, 1 << 20).max_size(), 999u);
  EXPECT_EQ(LengthPrefixCodec::ascii(19).max_size(), default_max_frame);
  EXPECT_EQ(LengthPrefixCodec::ascii(5).header_size(), 5u);
  EXPECT_EQ(FixedLengthCodec(7).max_size(), 7u);
}

// ---- Several messages, partial messages ---------------------------------------------------------

TEST(FramingTest, SeveralMessagesInOneFeedComeOutInOrder) {
  const DelimiterCodec lines;
  EXPECT_EQ(decode(lines, "a\n\nbc\n"), (std::vector<std::string>{"a", "", "bc"}));
  const FixedLengthCodec fixed(2);
  EXPECT_EQ(decode(fixed, "aabbcc"), (std::vector<std::string>{"aa", "bb", "cc"}));
  const auto ascii = LengthPrefixCodec::ascii(2);
  EXPECT_EQ(decode(ascii,
                   "00"
                   "01a"
                   "03bcd"),
            (std::vector<std::string>{"", "a", "bcd"}));
}

TEST(FramingTest, StartOfNextMessageStaysBuffered) {
  const LengthPrefixCodec codec(LengthFormat::u16_be);
  FrameDecoder decoder(codec);
  decoder.feed(codec.encode("first") + codec.encode("second").substr(0, 4));
  EXPECT_EQ(decoder.next(), "first");
  EXPECT_EQ(decoder.next(), std::nullopt);
  EXPECT_EQ(decoder.buffered(), 4u);
  decoder.feed("cond");
  EXPECT_EQ(decoder.next(), "second");
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FramingTest, DelimiterSplitsAcrossFeeds) {
  const DelimiterCodec codec("\r\n");
  FrameDecoder decoder(codec);
  decoder.feed("ab\r");
  EXPECT_EQ(decoder.next(), std::nullopt);
  decoder.feed("\ncd");
  EXPECT_EQ(decoder.next(), "ab");
  EXPECT_EQ(decoder.next(), std::nullopt);
  EXPECT_EQ(decoder.buffered(), 2u);
}

// "aab" inside "aaab" starts one byte after the search of "aa" stopped: the resumed search must
// back up delimiter.size() - 1 bytes to find it.
TEST(FramingTest, DelimiterResumesSearchAcrossAnOverlappingPrefix) {
  const DelimiterCodec codec("aab");
  FrameDecoder decoder(codec);
  for (const char c : "aaab"s) {
    EXPECT_EQ(decoder.next(), std::nullopt);
    decoder.feed(std::string_view(&c, 1));
  }
  EXPECT_EQ(decoder.next(), "a");
}

TEST(FramingTest, ZeroCopyFeedThroughPrepareAndCommit) {
  const DelimiterCodec codec;
  FrameDecoder decoder(codec);
  auto room = decoder.buffer().prepare(3);
  ASSERT_GE(room.size(), 3u);
  room[0] = 'o', room[1] = 'k', room[2] = '\n';
  decoder.buffer().commit(3);
  EXPECT_EQ(decoder.next(), "ok");
}

// ---- Limits: raised as soon as the header is seen -----------------------------------------------

TEST(FramingTest, OversizedBinaryLengthFailsAtHeaderTime) {
  const LengthPrefixCodec codec(LengthFormat::u32_be);
  FrameDecoder decoder(codec);
  decoder.feed("\x00\x4c\x4b"s);  // 3 of 4 header bytes: not known yet
  EXPECT_EQ(decoder.next(), std::nullopt);
  decoder.feed("\x40"s);  // 5000000 announced, no body byte sent
  try {
    decoder.next();
    ADD_FAILURE() << "nothing was thrown";
  } catch (const SocketError& e) {
    EXPECT_EQ(e.code(), errc::frame_too_large);
    EXPECT_NE(std::string(e.what()).find("announced 5000000 > max 1048576"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(throws_code([&] { decoder.next(); }, errc::frame_too_large));  // it persists
}

TEST(FramingTest, OversizedLengthFailsForEveryPrefixFormat) {
  const LengthPrefixCodec u16(LengthFormat::u16_be, 10), u64(LengthFormat::u64_be, 10);
  EXPECT_TRUE(throws_code([&] { decode(u16, "\0\13"s, false); }, errc::frame_too_large));
  EXPECT_TRUE(
      throws_code([&] { decode(u64, "\x80\0\0\0\0\0\0\0"s, false); }, errc::frame_too_large));
  EXPECT_TRUE(throws_code([&] { decode(LengthPrefixCodec::ascii(4, 10), "0011", false); },
                          errc::frame_too_large));
  EXPECT_EQ(decode(u16, "\0\12"s + std::string(10, 'x')), std::vector{std::string(10, 'x')});
}

TEST(FramingTest, OversizedNestedLengthFailsAtHeaderTime) {
  EXPECT_TRUE(
      throws_code([] { decode(typed_codec(), "S\x03\xe9"s, false); }, errc::frame_too_large));
  EXPECT_TRUE(throws_code([] { decode(typed_codec(), "L\xff\xff\xff\xff"s, false); },
                          errc::frame_too_large));
}

TEST(FramingTest, DelimiterMissingWithinMaxSizeIsFrameTooLarge) {
  const DelimiterCodec codec("\r\n", 8);
  FrameDecoder decoder(codec);
  decoder.feed("12345678\r");  // the delimiter could still start at offset 8
  EXPECT_EQ(decoder.next(), std::nullopt);
  decoder.feed("x");
  EXPECT_TRUE(throws_code([&] { decoder.next(); }, errc::frame_too_large));
  EXPECT_EQ(decode(codec, "12345678\r\n"), std::vector<std::string>{"12345678"});
}

TEST(FramingTest, CloseTerminatedFailsWhenBufferedExceedsMaxBeforeEof) {
  const CloseTerminatedCodec codec(4);
  FrameDecoder decoder(codec);
  decoder.feed("1234");
  EXPECT_EQ(decoder.next(), std::nullopt);
  decoder.feed("5");
  EXPECT_TRUE(throws_code([&] { decoder.next(); }, errc::message_too_large));
}

// ---- Malformed headers --------------------------------------------------------------------------

TEST(FramingTest, NonDigitInAsciiLengthIsMalformedBeforeTheHeaderCompletes) {
  const auto codec = LengthPrefixCodec::ascii(5);
  EXPECT_TRUE(throws_code([&] { decode(codec, "1x", false); }, errc::malformed_frame));
  EXPECT_TRUE(throws_code([&] { decode(codec, " 0001", false); }, errc::malformed_frame));
  EXPECT_TRUE(throws_code([&] { decode(codec, "-0001", false); }, errc::malformed_frame));
  EXPECT_EQ(decode(codec, "12", false), std::vector<std::string>{});
}

TEST(FramingTest, UnknownTypeByteIsMalformed) {
  EXPECT_TRUE(throws_code([] { decode(typed_codec(), "X", false); }, errc::malformed_frame));
  EXPECT_TRUE(throws_code([] { decode(typed_codec(), "P\0"s, false); }, errc::malformed_frame));
}

// ---- End of stream ------------------------------------------------------------------------------

TEST(FramingTest, EofMidFrameIsConnectionBrokenForEveryFramedCodec) {
  const FixedLengthCodec fixed(4);
  const DelimiterCodec lines;
  const LengthPrefixCodec u32(LengthFormat::u32_be);
  const std::vector<std::pair<const Codec*, std::string>> cases = {
      {&fixed, "abc"},       {&lines, "no newline"}, {&u32, "\0\0"s},
      {&u32, "\0\0\0\3ab"s}, {&typed_codec(), "F"},  {&typed_codec(), "S\0"s}};
  for (const auto& [codec, partial] : cases) {
    FrameDecoder decoder(*codec);
    decoder.feed(partial);
    decoder.feed_eof();
    EXPECT_TRUE(throws_code<ConnectionError>([&] { decoder.next(); }, errc::connection_broken))
        << testing::PrintToString(partial);
    EXPECT_TRUE(throws_code<ConnectionError>([&] { decoder.next(); }, errc::connection_broken));
  }
}

TEST(FramingTest, CleanEofBetweenFramesEndsTheStream) {
  const LengthPrefixCodec codec(LengthFormat::u16_be);
  FrameDecoder decoder(codec);
  decoder.feed(codec.encode("last"));
  decoder.feed_eof();
  EXPECT_TRUE(decoder.at_eof());
  EXPECT_EQ(decoder.next(), "last");
  EXPECT_EQ(decoder.next(), std::nullopt);
  EXPECT_EQ(decoder.next(), std::nullopt);
}

TEST(FramingTest, CloseTerminatedYieldsTheWholeStreamOnceAtEof) {
  const CloseTerminatedCodec codec;
  FrameDecoder decoder(codec);
  decoder.feed("body ");
  decoder.feed("text");
  EXPECT_EQ(decoder.next(), std::nullopt);
  decoder.feed_eof();
  EXPECT_EQ(decoder.next(), "body text");
  EXPECT_EQ(decoder.next(), std::nullopt);
}

TEST(FramingTest, CloseTerminatedEmptyStreamIsOneEmptyMessage) {
  EXPECT_EQ(decode(CloseTerminatedCodec(), ""), std::vector<std::string>{""});
  EXPECT_EQ(decode(FixedLengthCodec(3), ""), std::vector<std::string>{});
}

// ---- encode() refusals --------------------------------------------------------------------------

TEST(FramingTest, FixedLengthEncodeRefusesTheWrongSize) {
  const FixedLengthCodec codec(4);
  EXPECT_TRUE(throws_code([&] { codec.encode("abcde"); }, errc::frame_too_large));
  EXPECT_TRUE(throws_code([&] { codec.encode("abc"); }, errc::malformed_frame));
}

TEST(FramingTest, DelimiterEncodeRefusesMessagesThatWouldEndEarly) {
  EXPECT_TRUE(throws_code([] { DelimiterCodec().encode("a\nb"); }, errc::malformed_frame));
  // "x\r" + "\r\n" is fine, but "xa" + "aa" reads back as "x" then a stray "a".
  EXPECT_EQ(DelimiterCodec("\r\n").encode("x\r"), "x\r\r\n");
  EXPECT_TRUE(throws_code([] { DelimiterCodec("aa").encode("xa"); }, errc::malformed_frame));
  EXPECT_TRUE(throws_code([] { DelimiterCodec("\n", 3).encode("abcd"); }, errc::frame_too_large));
}

TEST(FramingTest, LengthPrefixEncodeRefusesWhatThePrefixCannotHold) {
  EXPECT_TRUE(
      throws_code([] { LengthPrefixCodec(LengthFormat::u16_be).encode(std::string(65536, 'x')); },
                  errc::frame_too_large));
  EXPECT_TRUE(throws_code([] { LengthPrefixCodec::ascii(2).encode(std::string(100, 'x')); },
                          errc::frame_too_large));
  EXPECT_TRUE(throws_code([] { LengthPrefixCodec(LengthFormat::u32_be, 3).encode("abcd"); },
                          errc::frame_too_large));
  EXPECT_EQ(LengthPrefixCodec::ascii(2).encode(std::string(99, 'x')).substr(0, 2), "99");
}

TEST(FramingTest, TypePrefixEncodeRefusesBadMessages) {
  const auto& codec = typed_codec();
  EXPECT_TRUE(throws_code([&] { codec.encode(""); }, errc::malformed_frame));
  EXPECT_TRUE(throws_code([&] { codec.encode("Zabc"); }, errc::malformed_frame));
  EXPECT_TRUE(throws_code([&] { codec.encode("Fab"); }, errc::malformed_frame));
  EXPECT_TRUE(throws_code([&] { codec.encode("P!"); }, errc::malformed_frame));
  EXPECT_TRUE(
      throws_code([&] { codec.encode("S" + std::string(1001, 'x')); }, errc::frame_too_large));
}

TEST(FramingTest, CloseTerminatedEncodeRefusesMoreThanMaxSize) {
  EXPECT_TRUE(throws_code([] { CloseTerminatedCodec(2).encode("abc"); }, errc::message_too_large));
}

// ---- Unusable parameters ------------------------------------------------------------------------

TEST(FramingTest, ConstructorsRejectUnusableParameters) {
  EXPECT_THROW(FixedLengthCodec c(0), std::invalid_argument);
  EXPECT_THROW(DelimiterCodec c(""), std::invalid_argument);
  EXPECT_THROW(LengthPrefixCodec c(LengthFormat::ascii), std::invalid_argument);
  EXPECT_THROW(LengthPrefixCodec::ascii(0), std::invalid_argument);
  EXPECT_THROW(LengthPrefixCodec::ascii(20), std::invalid_argument);
  EXPECT_THROW(TypePrefixCodec c({{'A', LengthFormat::ascii}}), std::invalid_argument);
  EXPECT_THROW(TypePrefixCodec c({{'A', std::size_t{11}}}, 10), std::invalid_argument);
}

// ---- send_frame / recv_frame over a socket pair -------------------------------------------------

TEST(FramingTest, RecvFrameReturnsEachSentFrameThenNulloptAtCleanClose) {
  auto [a, b] = socketpair();
  const LengthPrefixCodec codec(LengthFormat::u32_be);
  const std::vector<std::string> messages = {"one", "", std::string(300000, 'B')};
  // A sender thread: the big frame is more than a socket buffer holds.
  std::thread sender([&, &a = a] {
    for (const auto& m : messages) send_frame(a, codec, m);
    a.close();
  });
  FrameDecoder decoder(codec);
  for (const auto& m : messages) EXPECT_EQ(recv_frame(b, decoder), m);
  EXPECT_EQ(recv_frame(b, decoder), std::nullopt);
  EXPECT_EQ(recv_frame(b, decoder), std::nullopt);
  sender.join();
}

TEST(FramingTest, RecvFrameThrowsConnectionBrokenWhenPeerClosesMidFrame) {
  auto [a, b] = socketpair();
  const DelimiterCodec codec;
  a.sendall("whole\npart");
  a.close();
  FrameDecoder decoder(codec);
  EXPECT_EQ(recv_frame(b, decoder), "whole");
  EXPECT_TRUE(
      throws_code<ConnectionError>([&] { recv_frame(b, decoder); }, errc::connection_broken));
}

TEST(FramingTest, RecvFrameReadsACloseTerminatedMessageAfterShutdown) {
  auto [a, b] = socketpair();
  const CloseTerminatedCodec codec;
  send_frame(a, codec, "the whole body");
  a.shutdown(SHUT_WR);
  FrameDecoder decoder(codec);
  EXPECT_EQ(recv_frame(b, decoder), "the whole body");
  EXPECT_EQ(recv_frame(b, decoder), std::nullopt);
}

TEST(FramingTest, SendFrameRefusesAnUnencodableMessageBeforeSending) {
  auto [a, b] = socketpair();
  EXPECT_TRUE(
      throws_code([&] { send_frame(a, FixedLengthCodec(2), "abc"); }, errc::frame_too_large));
  a.close();
  const FixedLengthCodec one(1);
  FrameDecoder decoder(one);
  EXPECT_EQ(recv_frame(b, decoder), std::nullopt);  // nothing reached the wire
}

}  // namespace
}  // namespace sockserv
