// SPDX-License-Identifier: MIT
// Private to the event-loop servers (server.cpp, udp_server.cpp): a loop of a server with the
// tasks it runs, the wait for its socket, and start_task().
#pragma once

#include <sockserv/aio/event_loop.hpp>
#include <sockserv/aio/server.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <coroutine>
#include <cstring>
#include <memory>
#include <optional>

namespace sockserv::aio {
namespace detail {

// A client's address as accept() or recvfrom() gave it, kept for the error report at the end of
// its task: 32 bytes for IPv4, IPv6 and unnamed Unix clients rather than an Address's 136 (a
// held connection pays for it all its life); a longer, named Unix address goes to the heap.
class PeerAddress {
 public:
  explicit PeerAddress(const Address& address) : length_(address.size()) {
    if (is_short()) {
      std::memcpy(bytes_, address.data(), length_);
    } else {
      auto* heap = new Address(address);
      std::memcpy(bytes_, &heap, sizeof(Address*));  // NOLINT(bugprone-sizeof-expression)
    }
  }
  PeerAddress(const PeerAddress&) = delete;
  PeerAddress& operator=(const PeerAddress&) = delete;
  ~PeerAddress() {
    if (!is_short()) delete long_form();
  }
  Address get() const {
    if (!is_short()) return *long_form();
    sockaddr_storage storage{};
    std::memcpy(&storage, bytes_, length_);
    return {reinterpret_cast<const sockaddr*>(&storage), length_};
  }

 private:
  bool is_short() const noexcept { return length_ <= sizeof(bytes_); }
  Address* long_form() const noexcept {
    Address* heap = nullptr;
    std::memcpy(&heap, bytes_, sizeof(Address*));  // NOLINT(bugprone-sizeof-expression)
    return heap;
  }
  // A sockaddr_in6 (which fits a sockaddr_in) or the pointer to a longer address; bytes, so
  // that the length packs next to them.
  unsigned char bytes_[sizeof(sockaddr_in6)] = {};
  socklen_t length_;
};

class ReplyQueue;  // udp_server.cpp
struct ReplyQueueDelete {
  void operator()(ReplyQueue* queue) const noexcept;
};

// One event loop of a server, with the tasks it runs.
struct Worker {
  // One request's task: its cancel state (the task is a root, EventLoop::start_root), in the
  // worker's list so shutdown can cancel it. The only allocation per request besides the
  // handler's frame and the connection.
  struct Record : CancelState {
    Record(Worker& w, const Address& client) : worker(&w), peer(client) {}
    Worker* worker;
    Record* prev = nullptr;
    Record* next = nullptr;
    std::coroutine_handle<> task;
    PeerAddress peer;
    Admission admission;  // the client's place under the access policy, until the task ends
  };

  explicit Worker(AsyncServerBase& s) : server(&s) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Tasks that never ended (the loop failed) are destroyed while their loop still exists: their
  // frames' destructors close their connections through it.
  ~Worker() {
    while (records) {
      auto* r = records;
      unlink(*r);
      r->task.destroy();
      delete r;
    }
  }
  void link(Record& r) noexcept {
    r.next = records;
    if (records) records->prev = &r;
    records = &r;
  }
  void unlink(Record& r) noexcept {
    (r.prev ? r.prev->next : records) = r.next;
    if (r.next) r.next->prev = r.prev;
  }

  AsyncServerBase* server;
  std::unique_ptr<EventLoop> loop;
  Socket* socket = nullptr;  // what this loop receives from: the server's, or its own
  IoState listener;          // *socket, as registered on this loop
  Record* records = nullptr;
  CancelState receive_cancel;
  bool receiving = false;
  bool shutting_down = false;
  TimerHandle grace_timer;
  // AsyncUDPServer: the replies this loop gathers (after `loop`: destroyed first, while the
  // loop its retry timer is armed on still exists).
  std::unique_ptr<ReplyQueue, ReplyQueueDelete> replies;
};

// Waits until the server's socket is readable on this worker's loop.
class WaitReadable : private IoWaiter {
 public:
  explicit WaitReadable(Worker& w) noexcept : worker_(w) {
    state = &w.listener;
    is_reader = true;
  }
  WaitReadable(const WaitReadable&) = delete;
  WaitReadable& operator=(const WaitReadable&) = delete;
  ~WaitReadable() { EventLoop::forget_wait(*this); }
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    handle = h;
    cancel = cancel_state_of(h);
    return worker_.loop->wait_io(*this, std::nullopt);
  }
  void await_resume() const {
    if (error) throw_error({error, std::generic_category()}, "wait for requests");
  }

 private:
  Worker& worker_;
};

}  // namespace detail

template <class MakeTask>
void AsyncServerBase::start_task(detail::Worker& w, const Address& client_address,
                                 MakeTask&& make_task, Admission admission) {
  auto record = std::make_unique<detail::Worker::Record>(w, client_address);
  record->admission = std::move(admission);
  record->on_root_done = &AsyncServerBase::finish_task;
  try {
    Task<void> task = make_task(static_cast<CancelState&>(*record));
    record->task = w.loop->start_root(std::move(task), *record);
  } catch (...) {  // no memory, or the connection could not be registered: this request only
    ServerStats::add(stats.handler_errors);
    handle_error(client_address, std::current_exception());
    return;
  }
  w.link(*record.release());
  ++active_;
  ServerStats::add(stats.active);
}

}  // namespace sockserv::aio
