// SPDX-License-Identifier: MIT
// A line-based chat server: what one client writes, every other client reads. It shows messages
// crossing between connections on one event loop, each connection with a reader coroutine and a
// writer coroutine, and a bounded outbox per client: a client whose outbox reaches 256 lines
// (it stopped reading) is disconnected rather than allowed to grow the server's memory.
//
//   $ aio_chat_server [HOST PORT]          (default: localhost 9999)
//   $ nc localhost 9999    (in two terminals; type in one, read in the other)
#include <sockserv/aio/event.hpp>
#include <sockserv/aio/server.hpp>

#include <cstdlib>
#include <deque>
#include <exception>
#include <iostream>
#include <list>
#include <memory>
#include <string>

using namespace sockserv::aio;

// A member lives as long as its reader (the handler) or its writer needs it: shared ownership,
// so either coroutine may end first, even when the server cancels both at shutdown.
struct Member {
  explicit Member(Connection c) : conn(std::move(c)), name(conn.peer_address().to_string()) {}
  Connection conn;
  std::string name;
  std::deque<std::string> outbox;
  Event has_mail;
  CancelState writer_cancel;
};

std::list<std::shared_ptr<Member>> members;  // the one loop owns this: no lock needed

void broadcast(const Member& from, const std::string& text) {
  for (const auto& m : members) {
    if (m.get() == &from) continue;
    if (m->outbox.size() >= 256) {
      m->writer_cancel.cancel();  // too slow: its writer ends and closes it
      continue;
    }
    m->outbox.push_back(text);
    m->has_mail.set();
  }
}

Task<void> writer(std::shared_ptr<Member> m) {
  try {
    for (;;) {
      co_await m->has_mail.wait();
      m->has_mail.clear();
      while (!m->outbox.empty()) {
        co_await m->conn.sendall(m->outbox.front());
        m->outbox.pop_front();
      }
    }
  } catch (const std::exception&) {
    if (m->conn) m->conn.shutdown(SHUT_RDWR);  // wakes the reader: it sees EOF and leaves
  }
}

Task<void> handle(Connection conn) {
  auto me = std::make_shared<Member>(std::move(conn));
  members.push_back(me);
  EventLoop::current()->spawn(writer(me), &me->writer_cancel);
  broadcast(*me, "* " + me->name + " joined\n");
  try {
    for (std::string line; !(line = co_await me->conn.readline(4096)).empty();) {
      broadcast(*me, me->name + ": " + line);
    }
  } catch (const std::exception& e) {
    std::cerr << me->name << ": " << e.what() << "\n";
  }
  members.remove(me);
  broadcast(*me, "* " + me->name + " left\n");
  me->writer_cancel.cancel();
}

int main(int argc, char** argv) {
  // A start-up failure (a port in use, a bad host) is one line on stderr and exit status 1.
  try {
    const std::string host = argc > 2 ? argv[1] : "localhost";
    const auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 9999);
    // One loop (the default): every member on it, no locks.
    AsyncTCPServer server({host, port}, handle);
    std::cerr << "listening on " << server.server_address << std::endl;
    server.serve_forever();
  } catch (const std::exception& e) {
    std::cerr << "aio_chat_server: " << e.what() << std::endl;
    return 1;
  }
}
