// SPDX-License-Identifier: MIT
// aio::Connection reading and writing: recv, recv_into, sendall, readline, read_exact and
// read_frame (with each codec of framing.hpp) while the peer writes one byte per loop iteration,
// over a Unix socketpair and a TCP loopback pair; their limits, EOF, reset and timeout errors.
#include <sockserv/aio/connection.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/timeout.hpp>
#include <sockserv/error.hpp>
#include <sockserv/framing.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;
using test::throws_code;

enum class Pair { unix_stream, tcp };

std::pair<Socket, Socket> make_pair(Pair kind) {
  return kind == Pair::tcp ? test::tcp_pair() : socketpair();
}

// Sends `data` from `peer` one byte per loop iteration, then shuts the peer's sending side
// (the reader sees EOF) unless `then_eof` is false.
Task<void> trickle(Socket& peer, std::string data, bool then_eof = true) {
  try {
    for (const char c : data) {
      peer.sendall(std::string_view(&c, 1));
      co_await sleep(0ms);
    }
    if (then_eof) peer.shutdown(SHUT_WR);
  } catch (const SocketError&) {
    // The reader failed and closed its end (an expected error under test): stop sending.
  }
}

// Runs `reader(Connection)` on a fresh loop while the peer trickles `data` into it.
template <class T, class Reader>
T read_trickled(Pair kind, std::string data, Reader reader, bool then_eof = true) {
  auto [mine, peer] = make_pair(kind);
  EventLoop loop;
  loop.spawn(trickle(peer, std::move(data), then_eof));
  auto body = [](Socket sock, Reader r) -> Task<T> {
    co_return co_await r(Connection(std::move(sock)));
  };
  return loop.run_until_complete(body(std::move(mine), std::move(reader)));
}

class ConnectionReadTest : public testing::TestWithParam<Pair> {};

TEST_P(ConnectionReadTest, RecvReturnsTheBytesThenEmptyAtEof) {
  const auto got = read_trickled<std::vector<std::string>>(
      GetParam(), "abc", [](Connection conn) -> Task<std::vector<std::string>> {
        std::vector<std::string> chunks;
        for (std::string s; !(s = co_await conn.recv(2)).empty();) chunks.push_back(s);
        chunks.push_back(co_await conn.recv());  // still "" after EOF
        co_return chunks;
      });
  std::string joined;
  for (std::size_t i = 0; i + 1 < got.size(); ++i) {
    EXPECT_LE(got[i].size(), 2U);
    joined += got[i];
  }
  EXPECT_EQ(joined, "abc");
  EXPECT_EQ(got.back(), "");
}

TEST_P(ConnectionReadTest, RecvIntoFillsTheCallersBufferThenReturnsZeroAtEof) {
  const auto got =
      read_trickled<std::string>(GetParam(), "hello", [](Connection conn) -> Task<std::string> {
        std::string all;
        char buf[3];
        for (std::size_t n; (n = co_await conn.recv_into(buf)) > 0;) all.append(buf, n);
        co_return all;
      });
  EXPECT_EQ(got, "hello");
}

TEST_P(ConnectionReadTest, ReadlineSplitsLinesArrivingOneByteAtATime) {
  const auto lines = read_trickled<std::vector<std::string>>(
      GetParam(), "first\nsecond line\n\nlast without newline",
      [](Connection conn) -> Task<std::vector<std::string>> {
        std::vector<std::string> out;
        for (std::string line; !(line = co_await conn.readline()).empty();) out.push_back(line);
        out.push_back(co_await conn.readline());  // EOF again: ""
        co_return out;
      });
  EXPECT_EQ(lines, (std::vector<std::string>{"first\n", "second line\n", "\n",
                                             "last without newline", ""}));
}

TEST_P(ConnectionReadTest, ReadlineLongerThanMaxLenThrowsLineTooLong) {
  EXPECT_TRUE(throws_code<SocketError>(
      [&] {
        read_trickled<std::string>(
            GetParam(), "0123456789\n",
            [](Connection conn) -> Task<std::string> { co_return co_await conn.readline(8); });
      },
      errc::line_too_long));
  // A line of exactly max_len bytes, '\n' included, is fine.
  const auto line = read_trickled<std::string>(
      GetParam(), "1234567\nrest",
      [](Connection conn) -> Task<std::string> { co_return co_await conn.readline(8); });
  EXPECT_EQ(line, "1234567\n");
}

TEST_P(ConnectionReadTest, ReadExactCollectsOneByteWritesAndMixesWithReadline) {
  const auto parts = read_trickled<std::vector<std::string>>(
      GetParam(), "HDR:abcdefghij\ntail", [](Connection conn) -> Task<std::vector<std::string>> {
        std::vector<std::string> out;
        out.push_back(co_await conn.read_exact(4));
        out.push_back(co_await conn.readline());
        out.push_back(co_await conn.read_exact(0));
        out.push_back(co_await conn.recv());  // buffered bytes first, then the socket
        co_return out;
      });
  ASSERT_EQ(parts.size(), 4U);
  EXPECT_EQ(parts[0], "HDR:");
  EXPECT_EQ(parts[1], "abcdefghij\n");
  EXPECT_EQ(parts[2], "");
  EXPECT_FALSE(parts[3].empty());
  EXPECT_EQ(std::string("tail").substr(0, parts[3].size()), parts[3]);
}

TEST_P(ConnectionReadTest, ReadExactAtEofThrowsConnectionBroken) {
  EXPECT_TRUE(throws_code<ConnectionError>(
      [&] {
        read_trickled<std::string>(GetParam(), "short", [](Connection conn) -> Task<std::string> {
          co_return co_await conn.read_exact(10);
        });
      },
      errc::connection_broken));
}

// Reads frames of `codec` until the peer closes.
auto frames_of(const Codec& codec) {
  return [&codec](Connection conn) -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    for (;;) {
      auto frame = co_await conn.read_frame(codec);
      if (!frame) break;
      out.push_back(*frame);
    }
    co_return out;
  };
}

std::string encode_all(const Codec& codec, const std::vector<std::string>& messages) {
  std::string wire;
  for (const auto& m : messages) wire += codec.encode(m);
  return wire;
}

TEST_P(ConnectionReadTest, ReadFrameDecodesEachCodecFromOneByteWrites) {
  const std::vector<std::string> messages{"hello", "", "a longer message, with, commas"};
  const LengthPrefixCodec u32(LengthFormat::u32_be);
  const LengthPrefixCodec u16(LengthFormat::u16_be);
  const auto ascii = LengthPrefixCodec::ascii(5);
  const DelimiterCodec crlf("\r\n");
  const std::vector<std::pair<std::string, const Codec*>> codecs{
      {"u32", &u32}, {"u16", &u16}, {"ascii5", &ascii}, {"crlf", &crlf}};
  for (const auto& [name, codec] : codecs) {
    SCOPED_TRACE(name);
    const auto got = read_trickled<std::vector<std::string>>(
        GetParam(), encode_all(*codec, messages), frames_of(*codec));
    EXPECT_EQ(got, messages);
  }
  const FixedLengthCodec fixed(4);
  EXPECT_EQ(read_trickled<std::vector<std::string>>(GetParam(), "abcdefgh", frames_of(fixed)),
            (std::vector<std::string>{"abcd", "efgh"}));
  const TypePrefixCodec typed({{'A', std::size_t{3}}, {'B', LengthFormat::u16_be}});
  const std::vector<std::string> typed_messages{"Axyz", "Bvariable body", "A123"};
  EXPECT_EQ(read_trickled<std::vector<std::string>>(GetParam(), encode_all(typed, typed_messages),
                                                    frames_of(typed)),
            typed_messages);
}

TEST_P(ConnectionReadTest, ReadFrameWithAPartialFrameAtEofThrowsConnectionBroken) {
  const LengthPrefixCodec u32(LengthFormat::u32_be);
  const std::string wire = u32.encode("complete") + u32.encode("cut short").substr(0, 7);
  EXPECT_TRUE(throws_code<ConnectionError>(
      [&] { read_trickled<std::vector<std::string>>(GetParam(), wire, frames_of(u32)); },
      errc::connection_broken));
}

TEST_P(ConnectionReadTest, ReadFrameHeaderOverMaxSizeThrowsFrameTooLarge) {
  const LengthPrefixCodec small(LengthFormat::u32_be, 16);
  const LengthPrefixCodec big(LengthFormat::u32_be);
  EXPECT_TRUE(throws_code<SocketError>(
      [&] {
        read_trickled<std::vector<std::string>>(GetParam(), big.encode(std::string(17, 'x')),
                                                frames_of(small));
      },
      errc::frame_too_large));
}

TEST_P(ConnectionReadTest, WriteFrameAndSendallReachAConnectionOnTheSameLoop) {
  auto [a, b] = make_pair(GetParam());
  EventLoop loop;
  const LengthPrefixCodec codec(LengthFormat::u32_be);
  auto writer = [](Socket sock, const Codec& c) -> Task<void> {
    Connection conn(std::move(sock));
    co_await conn.write_frame(c, "framed");
    co_await conn.sendall("raw line\n");
    co_await conn.write("written\n");
  };
  auto reader = [](Socket sock, const Codec& c) -> Task<std::vector<std::string>> {
    Connection conn(std::move(sock));
    std::vector<std::string> out;
    auto frame = co_await conn.read_frame(c);
    out.push_back(frame.value_or("(none)"));
    out.push_back(co_await conn.readline());
    out.push_back(co_await conn.readline());
    out.push_back(co_await conn.readline());
    co_return out;
  };
  loop.spawn(writer(std::move(a), codec));
  EXPECT_EQ(loop.run_until_complete(reader(std::move(b), codec)),
            (std::vector<std::string>{"framed", "raw line\n", "written\n", ""}));
}

std::string pair_name(const testing::TestParamInfo<Pair>& param) {
  return param.param == Pair::tcp ? "Tcp" : "UnixStream";
}

INSTANTIATE_TEST_SUITE_P(Pairs, ConnectionReadTest, testing::Values(Pair::unix_stream, Pair::tcp),
                         pair_name);

// ---- Errors: reset and timeouts --------------------------------------------------------------

// Closes `sock` with SO_LINGER 0: the peer gets a reset, not an orderly end.
void reset(Socket& sock) {
  sock.set_linger(std::chrono::seconds(0));
  sock.close();
}

// An idle connection owns no read buffer: a readline() that waits with nothing pending holds
// none, while one waiting for the rest of a line keeps the part it has.
TEST(ConnectionMemoryTest, ReadlineWaitingWithNothingPendingHoldsNoBuffer) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  Connection* reader = nullptr;
  std::vector<std::size_t> capacities;  // while the reader waits
  peer.sendall("first\nsecond-");
  loop.call_later(50ms, [&] {
    capacities.push_back(reader->read_buffer().capacity());  // waiting for the rest of "second"
    peer.sendall("part\n");
  });
  loop.call_later(100ms, [&] {
    capacities.push_back(reader->read_buffer().capacity());  // waiting with nothing pending
    peer.sendall("third\n");
  });
  auto task = [&reader](Socket sock) -> Task<std::vector<std::string>> {
    Connection conn(std::move(sock));
    reader = &conn;
    std::vector<std::string> lines;
    for (int i = 0; i < 3; ++i) lines.push_back(co_await conn.readline());
    co_return lines;
  };
  const auto lines = loop.run_until_complete(task(std::move(mine)));
  EXPECT_EQ(lines, (std::vector<std::string>{"first\n", "second-part\n", "third\n"}));
  ASSERT_EQ(capacities.size(), 2U);
  EXPECT_GT(capacities[0], 0U);
  EXPECT_EQ(capacities[1], 0U) << "an idle readline() kept its buffer";
}

TEST(ConnectionErrorTest, PeerResetMakesRecvThrowConnectionError) {
  auto [mine, peer] = test::tcp_pair();
  EventLoop loop;
  auto reader = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    (void)co_await conn.recv();
  };
  loop.call_later(5ms, [&peer] { reset(peer); });
  EXPECT_TRUE(throws_code<ConnectionError>(
      [&] { loop.run_until_complete(reader(std::move(mine))); }, std::errc::connection_reset));
}

TEST(ConnectionErrorTest, SendallToAResetPeerThrowsConnectionError) {
  auto [mine, peer] = test::tcp_pair();
  reset(peer);
  EventLoop loop;
  auto writer = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    const std::string chunk(1 << 16, 'x');
    for (int i = 0; i < 1000; ++i) co_await conn.sendall(chunk);  // fails long before the end
  };
  try {
    loop.run_until_complete(writer(std::move(mine)));
    ADD_FAILURE() << "nothing was thrown";
  } catch (const ConnectionError& e) {
    EXPECT_TRUE(e.code() == std::errc::connection_reset || e.code() == std::errc::broken_pipe)
        << e.what();
  }
}

TEST(ConnectionErrorTest, SettimeoutMakesAWaitingOperationThrowTimeoutError) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  auto task = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    conn.settimeout(20ms);
    EXPECT_EQ(conn.gettimeout(), Timeout(20ms));
    const auto start = Clock::now();
    try {
      (void)co_await conn.recv();
      ADD_FAILURE() << "recv: nothing was thrown";
    } catch (const TimeoutError& e) {
      EXPECT_EQ(e.code(), std::errc::timed_out);
    }
    EXPECT_GE(Clock::now() - start, 20ms);
    // The connection is still usable; readline times out the same way.
    co_await conn.readline();
  };
  EXPECT_TRUE(throws_code<TimeoutError>([&] { loop.run_until_complete(task(std::move(mine))); },
                                        std::errc::timed_out));
}

TEST(ConnectionErrorTest, TimeoutDoesNotFireWhenDataArrivesInTime) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  loop.call_later(2ms, [&peer] { peer.sendall("in time\n"); });
  auto task = [](Socket sock) -> Task<std::string> {
    Connection conn(std::move(sock));
    conn.settimeout(5s);
    co_return co_await conn.readline();
  };
  EXPECT_EQ(loop.run_until_complete(task(std::move(mine))), "in time\n");
  EXPECT_EQ(loop.pending_timers(), 0U);
}

// The timeout is per operation even though the connection's timer is armed lazily (left at the
// first deadline while later operations complete): when it fires early it must move on to the
// deadline of the operation now waiting, not time that one out.
TEST(ConnectionErrorTest, EachOperationGetsTheWholeTimeoutAgain) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  for (int i = 1; i <= 4; ++i) {
    loop.call_later(i * 100ms, [&peer] { peer.sendall("x"); });
  }
  auto task = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    conn.settimeout(300ms);
    const auto start = Clock::now();
    std::string got;
    while (got.size() < 4) got += co_await conn.recv();
    EXPECT_GE(Clock::now() - start, 300ms) << "the four bytes came too fast to test anything";
    const auto last = Clock::now();
    try {
      (void)co_await conn.recv();
      ADD_FAILURE() << "recv: nothing was thrown";
    } catch (const TimeoutError&) {
      EXPECT_GE(Clock::now() - last, 300ms) << "timed out before its own deadline";
    }
  };
  loop.run_until_complete(task(std::move(mine)));
  EXPECT_EQ(loop.pending_timers(), 0U);
}

TEST(ConnectionErrorTest, SendallToAPeerThatNeverReadsTimesOut) {
  auto [mine, peer] = socketpair();
  EventLoop loop;
  auto task = [](Socket sock) -> Task<void> {
    Connection conn(std::move(sock));
    conn.settimeout(30ms);
    const std::string big(16 << 20, 'x');  // far more than the socket buffers hold
    co_await conn.sendall(big);
  };
  EXPECT_TRUE(throws_code<TimeoutError>([&] { loop.run_until_complete(task(std::move(mine))); },
                                        std::errc::timed_out));
}

TEST(ConnectionErrorTest, ConnectionNeedsARunningLoopOnItsThread) {
  auto [mine, peer] = socketpair();
  EXPECT_THROW((void)Connection(std::move(mine)), std::logic_error);
}

}  // namespace
}  // namespace sockserv::aio
