// SPDX-License-Identifier: MIT
// Selector on both backends (epoll and poll): readiness for read, write and accept, modify and
// unregister, timeouts, attached data, and a small non-blocking echo exchange driven by select().
#include <sockserv/selector.hpp>  // Test that header file is self-contained.

#include <sockserv/error.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <any>
#include <chrono>
#include <cstdlib>
#include <map>
#include <ostream>
#include <stdexcept>
#include <string>

namespace sockserv {

// Names the backend in test output and ctest names ("epoll"), not its bytes.
void PrintTo(Selector::Backend backend, std::ostream* out) {
  *out << (backend == Selector::Backend::epoll ? "epoll" : "poll");
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class SelectorTest : public testing::TestWithParam<Selector::Backend> {
 protected:
  Selector sel{GetParam()};

  // The ready events of `fd` after one select(timeout); 0 when it is not reported.
  unsigned ready_events(int fd, Timeout timeout = 10s) {
    for (const auto& [key, events] : sel.select(timeout)) {
      if (key->fd == fd) return events;
    }
    return 0;
  }
};

TEST_P(SelectorTest, UsesTheRequestedBackend) { EXPECT_EQ(sel.backend(), GetParam()); }

TEST_P(SelectorTest, ReportsReadableWhenDataArrives) {
  auto [client, server] = test::tcp_pair();
  sel.register_(server.fileno(), EVENT_READ);
  EXPECT_TRUE(sel.select(0ns).empty());  // nothing has arrived yet
  client.sendall("x");
  EXPECT_EQ(ready_events(server.fileno()), EVENT_READ);
  EXPECT_EQ(server.recv(10), "x");
  EXPECT_TRUE(sel.select(0ns).empty());  // level-triggered: drained means quiet again
}

TEST_P(SelectorTest, ReportsWritableForConnectedSocket) {
  auto [client, server] = test::tcp_pair();
  sel.register_(client.fileno(), EVENT_READ | EVENT_WRITE);
  EXPECT_EQ(ready_events(client.fileno()), EVENT_WRITE);  // writable, nothing to read
}

TEST_P(SelectorTest, ReportsListenerReadableWhenConnectionIsPending) {
  Socket listener = create_server(test::loopback4());
  sel.register_(listener.fileno(), EVENT_READ);
  EXPECT_TRUE(sel.select(0ns).empty());
  Socket client = create_connection(listener.getsockname(), 10s);
  EXPECT_EQ(ready_events(listener.fileno()), EVENT_READ);  // "it comes back readable: accept"
  EXPECT_TRUE(listener.accept().first);
}

TEST_P(SelectorTest, ReportsNonBlockingConnectCompletionAsWritable) {
  Socket listener = create_server(test::loopback4());
  Socket client(AF_INET, SOCK_STREAM);
  client.setblocking(false);
  const int rc = client.connect_ex(listener.getsockname());
  ASSERT_TRUE(rc == 0 || rc == EINPROGRESS) << rc;
  sel.register_(client.fileno(), EVENT_WRITE);
  EXPECT_EQ(ready_events(client.fileno()), EVENT_WRITE);
  EXPECT_FALSE(client.get_error());
}

TEST_P(SelectorTest, ReportsPeerCloseAsReadable) {
  auto [client, server] = test::tcp_pair();
  sel.register_(server.fileno(), EVENT_READ);
  client.close();
  EXPECT_EQ(ready_events(server.fileno()), EVENT_READ);
  EXPECT_EQ(server.recv(10), "");  // the readiness was the EOF
}

TEST_P(SelectorTest, ZeroTimeoutReturnsAtOnceAndPositiveTimeoutWaits) {
  auto [client, server] = test::tcp_pair();
  sel.register_(server.fileno(), EVENT_READ);
  auto start = Clock::now();
  EXPECT_TRUE(sel.select(0ns).empty());
  EXPECT_LT(Clock::now() - start, 1s);
  start = Clock::now();
  EXPECT_TRUE(sel.select(50ms).empty());
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, 45ms);
  EXPECT_LT(waited, 10s);
}

TEST_P(SelectorTest, ReportsSeveralReadyDescriptorsInOneSelect) {
  auto [c1, s1] = test::tcp_pair();
  auto [c2, s2] = test::tcp_pair();
  auto [c3, s3] = test::tcp_pair();
  sel.register_(s1.fileno(), EVENT_READ, std::string("one"));
  sel.register_(s2.fileno(), EVENT_READ, std::string("two"));
  sel.register_(s3.fileno(), EVENT_READ, std::string("three"));
  c1.sendall("1");
  c3.sendall("3");
  ASSERT_TRUE(test::wait_readable(s1.fileno(), 10s));
  ASSERT_TRUE(test::wait_readable(s3.fileno(), 10s));
  std::map<std::string, unsigned> ready;
  for (const auto& [key, events] : sel.select(10s)) {
    ready[std::any_cast<std::string>(key->data)] = events;
  }
  EXPECT_EQ(ready, (std::map<std::string, unsigned>{{"one", EVENT_READ}, {"three", EVENT_READ}}));
}

TEST_P(SelectorTest, ModifyChangesEventsAndData) {
  auto [client, server] = test::tcp_pair();
  const SelectorKey& key = sel.register_(client.fileno(), EVENT_READ, 1);
  EXPECT_EQ(key.fd, client.fileno());
  EXPECT_EQ(key.events, EVENT_READ);
  EXPECT_TRUE(sel.select(0ns).empty());
  sel.modify(client.fileno(), EVENT_WRITE, 2);
  EXPECT_EQ(ready_events(client.fileno()), EVENT_WRITE);
  const SelectorKey* now = sel.get_key(client.fileno());
  ASSERT_NE(now, nullptr);
  EXPECT_EQ(now->events, EVENT_WRITE);
  EXPECT_EQ(std::any_cast<int>(now->data), 2);
  sel.modify(client.fileno(), EVENT_WRITE, 3);  // same events, new data
  EXPECT_EQ(std::any_cast<int>(sel.get_key(client.fileno())->data), 3);
}

TEST_P(SelectorTest, UnregisterStopsReportingAndReturnsTheKey) {
  auto [client, server] = test::tcp_pair();
  sel.register_(server.fileno(), EVENT_READ, std::string("payload"));
  client.sendall("x");
  ASSERT_EQ(ready_events(server.fileno()), EVENT_READ);
  const SelectorKey key = sel.unregister(server.fileno());
  EXPECT_EQ(key.fd, server.fileno());
  EXPECT_EQ(std::any_cast<std::string>(key.data), "payload");
  EXPECT_EQ(sel.get_key(server.fileno()), nullptr);
  EXPECT_TRUE(sel.get_map().empty());
  EXPECT_TRUE(sel.select(0ns).empty());
  // The descriptor can be registered again afterwards.
  sel.register_(server.fileno(), EVENT_READ);
  EXPECT_EQ(ready_events(server.fileno()), EVENT_READ);
}

TEST_P(SelectorTest, UnregisterOfClosedDescriptorDoesNotThrow) {
  auto [client, server] = test::tcp_pair();
  const int fd = server.fileno();
  sel.register_(fd, EVENT_READ);
  server.close();
  EXPECT_NO_THROW(sel.unregister(fd));
}

TEST_P(SelectorTest, RefusesDoubleRegistrationAndBadEvents) {
  auto [client, server] = test::tcp_pair();
  sel.register_(server.fileno(), EVENT_READ);
  EXPECT_THROW(sel.register_(server.fileno(), EVENT_WRITE), std::invalid_argument);
  EXPECT_EQ(sel.get_key(server.fileno())->events, EVENT_READ);  // the first one stands
  EXPECT_THROW(sel.register_(client.fileno(), 0), std::invalid_argument);
  EXPECT_THROW(sel.register_(client.fileno(), 4), std::invalid_argument);
  EXPECT_EQ(sel.get_key(client.fileno()), nullptr);
}

TEST_P(SelectorTest, ModifyAndUnregisterOfUnknownDescriptorThrowOutOfRange) {
  auto [client, server] = test::tcp_pair();
  EXPECT_THROW(sel.modify(server.fileno(), EVENT_READ), std::out_of_range);
  EXPECT_THROW(sel.unregister(server.fileno()), std::out_of_range);
}

TEST_P(SelectorTest, DrivesNonBlockingEchoRoundTrip) {
  // The HOWTO's inside-out program: both ends non-blocking, every call made only when select()
  // says it will not block, output kept in a per-socket buffer.
  auto [client, server] = test::tcp_pair();
  client.setblocking(false);
  server.setblocking(false);
  std::string message(1 << 20, '\0');
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>(i % 253);
  std::string to_server = message, echo_pending, echoed;
  sel.register_(client.fileno(), EVENT_READ | EVENT_WRITE, std::string("client"));
  sel.register_(server.fileno(), EVENT_READ, std::string("server"));
  char chunk[65536];
  const auto deadline = Clock::now() + 60s;
  while (echoed.size() < message.size() && Clock::now() < deadline) {
    for (const auto& [key, events] : sel.select(10s)) {
      Socket& sock = key->fd == client.fileno() ? client : server;
      std::string& out = &sock == &client ? to_server : echo_pending;
      if (events & EVENT_READ) {
        const std::size_t n = sock.recv_into(chunk);
        ASSERT_GT(n, 0u) << "unexpected EOF";
        (&sock == &client ? echoed : echo_pending).append(chunk, n);
      }
      if ((events & EVENT_WRITE) && !out.empty()) out.erase(0, sock.send(out));
      // EVENT_WRITE only while output is pending, or select() would spin.
      const unsigned wanted = EVENT_READ | (out.empty() ? 0 : EVENT_WRITE);
      if (wanted != sel.get_key(sock.fileno())->events)
        sel.modify(sock.fileno(), wanted, key->data);
    }
  }
  EXPECT_EQ(echoed.size(), message.size());
  EXPECT_TRUE(echoed == message);
}

std::string backend_name(const testing::TestParamInfo<Selector::Backend>& backend) {
  return backend.param == Selector::Backend::epoll ? "epoll" : "poll";
}

INSTANTIATE_TEST_SUITE_P(Backends, SelectorTest,
                         testing::Values(Selector::Backend::epoll, Selector::Backend::poll),
                         backend_name);

TEST(SelectorBackendTest, EnvironmentForcesPollForAutomatic) {
  const char* old = std::getenv("SOCKSERV_POLLER");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("SOCKSERV_POLLER", "poll", 1);
  EXPECT_EQ(Selector().backend(), Selector::Backend::poll);
  ::setenv("SOCKSERV_POLLER", "epoll", 1);
  EXPECT_EQ(Selector().backend(), Selector::Backend::epoll);
  EXPECT_EQ(Selector(Selector::Backend::epoll).backend(), Selector::Backend::epoll);
  if (old != nullptr) {
    ::setenv("SOCKSERV_POLLER", saved.c_str(), 1);
  } else {
    ::unsetenv("SOCKSERV_POLLER");
  }
}

TEST(SelectorBackendTest, MovedSelectorKeepsItsRegistrations) {
  auto [client, server] = test::tcp_pair();
  Selector a;
  a.register_(server.fileno(), EVENT_READ, 7);
  Selector b(std::move(a));
  client.sendall("x");
  const auto ready = b.select(10s);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(std::any_cast<int>(ready[0].first->data), 7);
}

}  // namespace
}  // namespace sockserv
