// SPDX-License-Identifier: MIT
// SocketFile, the HOWTO's "file-like beast": bounded line reads over any split of the stream,
// the read family at EOF, and the flush warning ("a common mistake is to write something, and
// then read for a reply").
#include <sockserv/socket_file.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sockserv {
namespace {

using namespace std::chrono_literals;
using test::throws_code;

// A connected pair whose reading end has a timeout, so no test can hang.
struct Pair {
  Socket writer;
  Socket reader;
  Pair() {
    auto [a, b] = test::tcp_pair();
    writer = std::move(a);
    reader = std::move(b);
    reader.settimeout(30s);
    writer.settimeout(30s);
  }
};

// ---- Lines -------------------------------------------------------------------------------------

TEST(SocketFileTest, ReadlineAssemblesOneByteWrites) {
  Pair p;
  p.writer.set_nodelay(true);
  const std::string text = "alpha\nbeta\n\ngamma\n";
  std::thread writer([&] {
    for (char c : text) p.writer.sendall(std::string_view(&c, 1));
    p.writer.shutdown(SHUT_WR);
  });
  SocketFile f(p.reader);
  EXPECT_EQ(f.readline(), "alpha\n");
  EXPECT_EQ(f.readline(), "beta\n");
  EXPECT_EQ(f.readline(), "\n");
  EXPECT_EQ(f.readline(), "gamma\n");
  EXPECT_EQ(f.readline(), "");
  writer.join();
}

TEST(SocketFileTest, ReadlineReturnsLastLineWithoutNewlineThenEmpty) {
  Pair p;
  p.writer.sendall("one\ntwo");
  p.writer.close();
  SocketFile f(p.reader);
  EXPECT_EQ(f.readline(), "one\n");
  EXPECT_EQ(f.readline(), "two");
  EXPECT_EQ(f.readline(), "");
  EXPECT_EQ(f.readline(), "");
}

TEST(SocketFileTest, ReadlineThrowsLineTooLongAndStaysBounded) {
  Pair p;
  const std::size_t max_len = 1000;
  std::thread writer([&] {
    try {
      p.writer.sendall(std::string(1 << 20, 'x'));  // an endless line, as far as we care
    } catch (const SocketError&) {
      // the reader closed without reading it all
    }
  });
  SocketFile f(p.reader, 512);
  EXPECT_TRUE(throws_code<SocketError>([&] { f.readline(max_len); }, errc::line_too_long));
  EXPECT_LE(f.buffered(), max_len + 512);  // it stopped reading at the limit
  p.reader.close();
  writer.join();
}

TEST(SocketFileTest, ReadlineAcceptsLineOfExactlyMaxLen) {
  Pair p;
  p.writer.sendall("12345\n123456\n");
  SocketFile f(p.reader);
  EXPECT_EQ(f.readline(6), "12345\n");
  EXPECT_TRUE(throws_code<SocketError>([&] { f.readline(6); }, errc::line_too_long));
}

TEST(SocketFileTest, LinesIteratesUntilEof) {
  Pair p;
  p.writer.sendall("a\nbb\nccc");
  p.writer.close();
  SocketFile f(p.reader);
  std::vector<std::string> lines;
  for (const std::string& line : f.lines()) lines.push_back(line);
  EXPECT_EQ(lines, (std::vector<std::string>{"a\n", "bb\n", "ccc"}));
}

TEST(SocketFileTest, ReadlineHonoursTheSocketTimeout) {
  Pair p;
  p.reader.settimeout(50ms);
  p.writer.sendall("no newline yet");
  SocketFile f(p.reader);
  EXPECT_TRUE(throws_code<TimeoutError>([&] { f.readline(); }, std::errc::timed_out));
}

TEST(SocketFileTest, WholeReadlineMustFinishWithinTheTimeout) {
  // A peer trickling one byte every 20 ms satisfies every single recv(), but the line as a whole
  // must still arrive within the socket's timeout.
  Pair p;
  p.reader.settimeout(300ms);
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    for (int i = 0; i < 250 && !stop; ++i) {  // at most 5 s
      p.writer.sendall("x");
      std::this_thread::sleep_for(20ms);  // the slow peer under test, not synchronisation
    }
  });
  SocketFile f(p.reader);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(throws_code<TimeoutError>([&] { f.readline(); }, std::errc::timed_out));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  stop = true;
  trickler.join();
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 4s);
  EXPECT_FALSE(p.reader.get_deadline());  // the call's deadline does not outlive the call
}

TEST(SocketFileTest, TimedReadlineLeavesOtherThreadsDeadlineAlone) {
  // Socket allows one thread to read while another writes. A timed readline() in one thread must
  // not change the deadline that the writing thread's calls obey.
  Pair p;
  p.reader.settimeout(30s);
  std::atomic<pid_t> tid{0};
  std::thread reading([&] {
    tid = ::gettid();
    SocketFile f(p.reader);
    EXPECT_EQ(f.readline(), "go\n");
  });
  while (tid == 0) std::this_thread::yield();
  ASSERT_TRUE(test::wait_until_blocked(tid, 20s));
  const bool deadline_seen = p.reader.get_deadline().has_value();  // what sendall() would use
  p.reader.sendall("from the writing thread");
  p.writer.sendall("go\n");
  reading.join();
  EXPECT_FALSE(deadline_seen) << "readline() in another thread set the socket's deadline";
}

TEST(SocketFileTest, CountsBytesReceivedAndSent) {
  Pair p;
  SocketFile out(p.writer, SocketFile::default_buffer_size, 4096);
  out.write("12345");
  EXPECT_EQ(out.bytes_sent(), 0u);  // still buffered
  out.flush();
  out.write(std::string(5000, 'z'));  // larger than the buffer: straight out
  EXPECT_EQ(out.bytes_sent(), 5005u);
  SocketFile in(p.reader);
  EXPECT_EQ(in.read_exact(5005).size(), 5005u);
  EXPECT_EQ(in.bytes_received(), 5005u);
}

// ---- Reads -------------------------------------------------------------------------------------

TEST(SocketFileTest, ReadReturnsFewerBytesOnlyAtEof) {
  Pair p;
  p.writer.sendall("0123456789");
  p.writer.close();
  SocketFile f(p.reader, 3);  // tiny buffer: read() loops over several recv() calls
  EXPECT_EQ(f.read(4), "0123");
  EXPECT_EQ(f.read(100), "456789");
  EXPECT_EQ(f.read(1), "");
}

TEST(SocketFileTest, ReadExactThrowsConnectionBrokenWhenPeerClosesFirst) {
  Pair p;
  p.writer.sendall("short");
  p.writer.close();
  SocketFile f(p.reader);
  EXPECT_EQ(f.read_exact(2), "sh");
  EXPECT_TRUE(throws_code<ConnectionError>([&] { f.read_exact(10); }, errc::connection_broken));
}

TEST(SocketFileTest, Read1ServesBufferedBytesBeforeReceiving) {
  Pair p;
  p.writer.sendall("line\nrest");
  SocketFile f(p.reader);
  ASSERT_EQ(f.readline(), "line\n");
  // "rest" may or may not have come with the first recv(); read1 makes at most one more call.
  std::string got = f.read1(100);
  if (got.size() < 4) got += f.read1(100);
  EXPECT_EQ(got, "rest");
  p.writer.sendall("abcdef");
  const std::string some = f.read1(3);
  EXPECT_GE(some.size(), 1u);
  EXPECT_LE(some.size(), 3u);
}

TEST(SocketFileTest, Readinto1ServesBufferedBytesFirstThenReceivesOnce) {
  Pair p;
  p.writer.sendall("line\nrest");
  SocketFile f(p.reader);
  ASSERT_EQ(f.readline(), "line\n");
  char small[2];
  std::string got(small, f.readinto1(small));  // buffered bytes first, however few fit
  ASSERT_GE(got.size(), 1u);
  std::vector<char> big(SocketFile::default_buffer_size);  // large: may bypass the buffer
  while (got.size() < 4) got.append(big.data(), f.readinto1(big));
  EXPECT_EQ(got, "rest");
  EXPECT_EQ(f.buffered(), 0u);
  p.writer.sendall("abc");
  p.writer.close();
  std::string tail;
  for (std::size_t n; (n = f.readinto1(big)) > 0;) tail.append(big.data(), n);
  EXPECT_EQ(tail, "abc");
  EXPECT_EQ(f.readinto1(big), 0u);  // EOF stays EOF
  EXPECT_EQ(f.bytes_received(), 12u);
}

TEST(SocketFileTest, ReadToEofStopsAtItsLimit) {
  Pair small;
  small.writer.sendall("whole body");
  small.writer.close();
  SocketFile f(small.reader);
  EXPECT_EQ(f.read_to_eof(10), "whole body");

  Pair big;
  std::thread writer([&] {
    try {
      big.writer.sendall(std::string(1 << 20, 'b'));
    } catch (const SocketError&) {
    }
  });
  SocketFile g(big.reader, 4096);
  EXPECT_TRUE(throws_code<SocketError>([&] { g.read_to_eof(10000); }, errc::message_too_large));
  EXPECT_LE(g.buffered(), 10000u + 4096u);
  big.reader.close();
  writer.join();
}

TEST(SocketFileTest, MixedReadsShareOneBuffer) {
  Pair p;
  p.writer.sendall("HEAD 5\nbody!tail");
  p.writer.close();
  SocketFile f(p.reader);
  EXPECT_EQ(f.readline(), "HEAD 5\n");
  EXPECT_EQ(f.read_exact(5), "body!");
  EXPECT_EQ(f.read_to_eof(100), "tail");
}

// ---- Writes ------------------------------------------------------------------------------------

TEST(SocketFileTest, UnbufferedWriteIsSentAtOnce) {
  Pair p;
  SocketFile f(p.writer);  // write_buffer_size 0: the default
  EXPECT_EQ(f.write("now"), 3u);
  EXPECT_EQ(p.reader.recv_exact(3), "now");
}

TEST(SocketFileTest, BufferedWriteIsNotSentUntilFlush) {
  Pair p;
  SocketFile f(p.writer, SocketFile::default_buffer_size, 4096);
  EXPECT_EQ(f.write("request"), 7u);
  // The HOWTO's deadlock in miniature: the peer waits and sees nothing.
  EXPECT_FALSE(test::wait_readable(p.reader.fileno(), 50ms));
  f.flush();
  EXPECT_EQ(p.reader.recv_exact(7), "request");
}

TEST(SocketFileTest, BufferedWriteSendsWhenBufferFills) {
  Pair p;
  SocketFile f(p.writer, SocketFile::default_buffer_size, 8);
  f.write("12345");
  f.write("6789");  // 9 bytes do not fit: the first five go out, the rest waits
  EXPECT_EQ(p.reader.recv_exact(5), "12345");
  f.write(std::string(20, 'L'));  // larger than the buffer: flushed, then sent directly
  EXPECT_EQ(p.reader.recv_exact(24), "6789" + std::string(20, 'L'));
}

TEST(SocketFileTest, CloseFlushesAndRefusesFurtherWrites) {
  Pair p;
  {
    SocketFile f(p.writer, SocketFile::default_buffer_size, 4096);
    f.write("bye");
    f.close();
    EXPECT_TRUE(f.closed());
    EXPECT_THROW(f.write("more"), std::logic_error);
    EXPECT_TRUE(p.writer);  // the socket itself stays open
  }
  EXPECT_EQ(p.reader.recv_exact(3), "bye");
}

TEST(SocketFileTest, DestructorFlushesWhatIsLeft) {
  Pair p;
  {
    SocketFile f(p.writer, SocketFile::default_buffer_size, 4096);
    f.write("left over");
  }
  EXPECT_EQ(p.reader.recv_exact(9), "left over");
}

}  // namespace
}  // namespace sockserv
