// SPDX-License-Identifier: MIT
// Pipelined replies (issue 13 item 4, docs/adr/0005-pipelined-replies.md): Connection::write()
// holds replies while more requests are already buffered and sends them together when the
// input runs dry; SocketFile's rfile flushes wfile before it waits. Counted exactly over a
// SOCK_SEQPACKET socketpair, where each send(2) arrives as one record: the peer's recv() count
// is the server's send count.
#include <sockserv/aio/connection.hpp>  // Test that header file is self-contained.

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sockserv::aio {
namespace {

using namespace std::chrono_literals;

constexpr int requests = 100;

std::string pipeline(int n) {
  std::string all;
  for (int i = 0; i < n; ++i) all += "req " + std::to_string(i) + "\n";
  return all;
}

// Receives records until `total` bytes came (or EOF / the 20 s watchdog); returns the records.
std::vector<std::string> receive_records(Socket& peer, std::size_t total) {
  std::vector<std::string> records;
  std::size_t got = 0;
  while (got < total) {
    std::string record = peer.recv(1 << 20);
    if (record.empty()) break;
    got += record.size();
    records.push_back(std::move(record));
  }
  return records;
}

std::size_t reply_bytes(int n) {
  std::size_t total = 0;
  for (int i = 0; i < n; ++i) total += ("ok req " + std::to_string(i) + "\n").size();
  return total;
}

// The server side: answers each line with write() ("ok " + line) until EOF.
Task<void> answer_lines(Socket sock, std::size_t write_limit, bool use_sendall) {
  Connection conn(std::move(sock));
  conn.set_write_buffer_limit(write_limit);
  for (std::string line; !(line = co_await conn.readline()).empty();) {
    const std::string reply = "ok " + line;
    if (use_sendall) {
      co_await conn.sendall(reply);
    } else {
      co_await conn.write(reply);
    }
  }
}

// Runs answer_lines on a loop in a thread while this thread sends `requests` lines in one
// record, then reads the replies; returns the records they came in.
std::vector<std::string> pipelined(std::size_t write_limit, bool use_sendall = false) {
  auto [server, client] = socketpair(AF_UNIX, SOCK_SEQPACKET);
  client.settimeout(20s);  // a watchdog, not a measurement: a missing reply fails the test
  std::thread serving([&, sock = std::move(server)]() mutable {
    EventLoop loop;
    loop.run_until_complete(answer_lines(std::move(sock), write_limit, use_sendall));
  });
  client.sendall(pipeline(requests));
  auto records = receive_records(client, reply_bytes(requests));
  client.shutdown(SHUT_WR);
  serving.join();
  return records;
}

std::string joined(const std::vector<std::string>& records) {
  std::string all;
  for (const auto& r : records) all += r;
  return all;
}

std::string expected_replies() {
  std::string all;
  for (int i = 0; i < requests; ++i) all += "ok req " + std::to_string(i) + "\n";
  return all;
}

TEST(AioPipelinedWritesTest, WriteSendsPipelinedRepliesInOneSendWhenTheInputRunsDry) {
  const auto records = pipelined(Connection::default_write_buffer_limit);
  EXPECT_EQ(joined(records), expected_replies());
  EXPECT_EQ(records.size(), 1u) << "100 pipelined requests, replies in " << records.size()
                                << " sends";
}

TEST(AioPipelinedWritesTest, SendallStillSendsEachReplyAtOnce) {
  const auto records = pipelined(Connection::default_write_buffer_limit, true);
  EXPECT_EQ(joined(records), expected_replies());
  EXPECT_EQ(records.size(), static_cast<std::size_t>(requests));
}

TEST(AioPipelinedWritesTest, WriteSendsWhenTheBufferReachesItsLimit) {
  // Replies are 11 to 13 bytes (1,290 in all): a 120-byte limit sends every ten or so.
  const auto records = pipelined(120);
  EXPECT_EQ(joined(records), expected_replies());
  EXPECT_GE(records.size(), 8u);
  EXPECT_LE(records.size(), 14u);
  for (const auto& r : records) EXPECT_LT(r.size(), 120u + 14u);
}

TEST(AioPipelinedWritesTest, HeldRepliesGoOutBeforeAReadWaitsForTheRestOfARequest) {
  // A complete request and the start of the next: the first reply is held (input is buffered),
  // then readline() must wait for the rest. The peer waits for the reply before it sends the
  // rest, so without the flush before the wait both would wait until the watchdog.
  auto [server, client] = socketpair();
  client.settimeout(20s);
  std::thread serving([sock = std::move(server)]() mutable {
    EventLoop loop;
    loop.run_until_complete(answer_lines(std::move(sock), 65536, false));
  });
  client.sendall("first\nsec");
  EXPECT_EQ(client.recv_exact(9), "ok first\n");
  client.sendall("ond\n");
  EXPECT_EQ(client.recv_exact(10), "ok second\n");
  client.shutdown(SHUT_WR);
  serving.join();
}

TEST(AioPipelinedWritesTest, CloseSendsWhatWriteStillHolds) {
  // The handler answers one of two buffered requests and returns: the held reply is sent by
  // close() rather than lost.
  auto [server, client] = socketpair();
  client.settimeout(20s);
  client.sendall("one\ntwo\n");
  EventLoop loop;
  auto once = [](Socket sock) -> Task<std::size_t> {
    Connection conn(std::move(sock));
    const std::string line = co_await conn.readline();
    co_await conn.write("ok " + line);
    co_return conn.buffered_output();
  };
  EXPECT_EQ(loop.run_until_complete(once(std::move(server))), 7u);  // held: "two" is buffered
  EXPECT_EQ(client.recv_exact(7), "ok one\n");
}

TEST(AioPipelinedWritesTest, BufferedInputCountsWhatTheBufferedReadsKeep) {
  auto [server, client] = socketpair();
  client.sendall("a\nbb\n");
  client.shutdown(SHUT_WR);
  EventLoop loop;
  auto check = [](Socket sock) -> Task<std::vector<std::size_t>> {
    Connection conn(std::move(sock));
    std::vector<std::size_t> seen{conn.buffered_input()};
    (void)co_await conn.readline();
    seen.push_back(conn.buffered_input());
    (void)co_await conn.readline();
    seen.push_back(conn.buffered_input());
    co_return seen;
  };
  EXPECT_EQ(loop.run_until_complete(check(std::move(server))), (std::vector<std::size_t>{0, 3, 0}));
}

// ---- The blocking side: rfile flushes wfile before it waits ------------------------------------

// `idle`: the servers' idle mode (an idle_timeout, docs/adr/0006-timeout-defaults.md), whose
// first wait of a read takes another path than receive(): it must flush too.
void expect_one_send_for_the_batch(std::optional<std::chrono::seconds> idle) {
  auto [server, client] = socketpair(AF_UNIX, SOCK_SEQPACKET);
  client.settimeout(20s);
  std::thread serving([sock = std::move(server), idle]() mutable {
    SocketFile rfile(sock);
    SocketFile wfile(sock, SocketFile::default_buffer_size, 65536);
    rfile.flush_before_receive(&wfile);
    if (idle) rfile.set_idle_timeout(*idle);
    for (std::string line; !(line = rfile.readline()).empty();) wfile.write("ok " + line);
  });
  client.sendall(pipeline(requests));
  const auto records = receive_records(client, reply_bytes(requests));
  client.shutdown(SHUT_WR);
  serving.join();
  EXPECT_EQ(joined(records), expected_replies());
  EXPECT_EQ(records.size(), 1u);
}

TEST(SocketFilePipelinedTest, FlushBeforeReceiveSendsPipelinedRepliesTogether) {
  expect_one_send_for_the_batch(std::nullopt);
}

TEST(SocketFilePipelinedTest, FlushBeforeReceiveAlsoFlushesBeforeAnIdleWait) {
  expect_one_send_for_the_batch(60s);
}

TEST(SocketFilePipelinedTest, BufferedInputSaysWhetherARequestIsAlreadyHere) {
  auto [server, client] = socketpair();
  client.sendall("a\nbb\n");
  SocketFile rfile(server);
  EXPECT_EQ(rfile.buffered_input(), 0u);
  EXPECT_EQ(rfile.readline(), "a\n");
  EXPECT_EQ(rfile.buffered_input(), 3u);
  EXPECT_EQ(rfile.readline(), "bb\n");
  EXPECT_EQ(rfile.buffered_input(), 0u);
}

}  // namespace
}  // namespace sockserv::aio
