// SPDX-License-Identifier: MIT
// Internal: a connection's state and the awaitable operations Connection returns. Not part of the
// API: the names may change in any release. Each operation is a plain awaitable, not a
// coroutine: awaiting one allocates nothing, and it lives in the frame of the coroutine that
// awaits it (which an idle connection keeps), so they are kept small.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/aio/buffer_lease.hpp>
#include <sockserv/aio/detail/io_state.hpp>
#include <sockserv/aio/event_loop.hpp>
#include <sockserv/buffer.hpp>
#include <sockserv/framing.hpp>
#include <sockserv/proxy_protocol.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/stats.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sockserv::aio {
namespace detail {

// Operations keep a failure as an int: an errno value, or a TLS code (ssl_errc) above this.
inline constexpr int tls_error_base = 1 << 16;
// The int an operation keeps for `ec` (its errno, or tls_error_base + the ssl_errc).
int operation_error(const std::error_code& ec) noexcept;

// Connection::write()'s buffer (docs/adr/0005-pipelined-replies.md): replies held back while
// more requests are already buffered, sent together. Allocated on a connection's first held
// reply; its bytes are freed whenever they have all gone out, so an idle connection owns none.
struct WriteBuffer {
  WriteBuffer() = default;
  WriteBuffer(const WriteBuffer&) = delete;
  WriteBuffer& operator=(const WriteBuffer&) = delete;
  ~WriteBuffer() { EventLoop::forget_wait(flusher); }

  std::string_view pending() const noexcept { return std::string_view(bytes).substr(sent); }
  // `n` more bytes went out; frees the bytes when none are left.
  void advance(std::size_t n) noexcept {
    sent += n;
    if (sent >= bytes.size()) drop();
  }
  void drop() noexcept {
    std::string().swap(bytes);
    sent = 0;
  }

  std::string bytes;
  std::size_t sent = 0;  // bytes at the front already sent
  // Sends the rest on writability when a read had to wait while bytes were left and the kernel
  // would not take them at once (IoOperation::begin); no coroutine waits on it.
  IoWaiter flusher;
};

// A connection's state, on the heap so its address stays fixed while the loop refers to it.
struct ConnectionState : IoState {
  Socket sock;
  Buffer in;  // bytes received by readline/read_exact/read_frame, not yet used
  // Per operation; negative: none (a Timeout, without the optional's 8 more bytes: every held
  // connection pays for each field here).
  std::chrono::nanoseconds timeout{-1};
  // A read that finds `in` empty waits up to this instead (negative: no limit), unless it is
  // no_idle_mode: then every wait is under `timeout` (docs/adr/0006-timeout-defaults.md).
  static constexpr std::chrono::nanoseconds no_idle_mode{-2};
  std::chrono::nanoseconds idle_timeout = no_idle_mode;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  ServerStats* stats = nullptr;  // the server's, credited with the byte counts at close
  // Set by the server from a PROXY header; a pointer, as most connections never have one.
  std::unique_ptr<Address> peer_override;
  std::unique_ptr<WriteBuffer> out;   // write()'s held replies; nullptr until the first
  bool eof = false;                   // a read has seen the end of the stream
  std::uint32_t write_limit = 65536;  // write() sends once this many bytes are held
};

// The common part of the awaitable operations: suspend on the connection's descriptor until
// perform() completes, with the connection's timeout and the task's cancellation.
class IoOperation : protected IoWaiter {
 public:
  IoOperation(ConnectionState& c, bool reading) noexcept {
    state = &c;
    is_reader = reading;
  }
  // Movable until it is awaited (with_timeout takes awaitables by value).
  IoOperation(IoOperation&& other) noexcept : IoWaiter() {
    state = other.state;
    is_reader = other.is_reader;
    perform = other.perform;
  }
  IoOperation(const IoOperation&) = delete;
  IoOperation& operator=(const IoOperation&) = delete;
  ~IoOperation() { EventLoop::forget_wait(*this); }

  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    handle = h;
    cancel = cancel_state_of(h);
    return begin();
  }

 protected:
  // Tries once, then registers the wait. False: complete now (or cancelled), do not suspend.
  bool begin();
  // Throws for a timeout, a cancellation or the syscall's error.
  void check(std::string_view operation) const;
  ConnectionState& conn() const noexcept { return static_cast<ConnectionState&>(*state); }

  int sys_error_ = 0;
};

// One TLS handshake attempt, waiting in the direction OpenSSL asks for. Completes when the
// handshake is done (true) or when it needs the other direction (false: await a new one).
class HandshakeOperation : public IoOperation {
 public:
  HandshakeOperation(ConnectionState& c, bool reading) noexcept;
  bool await_resume() {
    check("do_handshake");
    return done_;
  }

 private:
  static bool attempt(IoWaiter& self);
  bool done_ = false;
};

// Waits for readiness only (connect completion).
class WaitOperation : public IoOperation {
 public:
  WaitOperation(ConnectionState& c, bool reading) noexcept : IoOperation(c, reading) {}
  void await_resume() { check(is_reader ? "wait readable" : "wait writable"); }
};

class RecvOperation : public IoOperation {
 public:
  // use_buffered: serve bytes already in the connection's read buffer first (recv_into);
  // false: always receive new bytes (the buffered readers' receive_more()).
  RecvOperation(ConnectionState& c, std::span<char> into, bool use_buffered) noexcept;
  std::size_t await_resume() {
    check("recv");
    return received_;
  }

 private:
  static bool attempt(IoWaiter& self);
  std::span<char> into_;
  std::size_t received_ = 0;
  bool use_buffered_;
};

class RecvStringOperation : public IoOperation {
 public:
  RecvStringOperation(ConnectionState& c, std::size_t max) noexcept;
  std::string await_resume() {
    check("recv");
    return std::move(data_);
  }

 private:
  static bool attempt(IoWaiter& self);
  std::size_t max_;
  std::string data_;
};

// recv() into a caller's string, reusing its capacity: no allocation per message once the string
// has grown to the messages' size.
class RecvToStringOperation : public IoOperation {
 public:
  RecvToStringOperation(ConnectionState& c, std::string& into, std::size_t max) noexcept;
  std::size_t await_resume() {
    check("recv");
    return into_->size();
  }

 private:
  static bool attempt(IoWaiter& self);
  std::uint32_t max_;
  std::string* into_;
};

// recv_lease(): one recv() straight into a pooled buffer, lent to the caller.
class RecvLeaseOperation : public IoOperation {
 public:
  RecvLeaseOperation(ConnectionState& c, std::size_t max) noexcept;
  BufferLease await_resume() {
    check("recv");
    return std::move(lease_);
  }

 private:
  static bool attempt(IoWaiter& self);
  std::uint32_t max_;
  BufferLease lease_;
};

// Under a backend that sends by completion (io_uring) the bytes go out as a send queued for
// the loop's next wait, and the operation completes with its completion; an operation left
// before that (a timeout, a cancellation) cancels the send before its bytes can go away.
class SendOperation : public IoOperation {
 public:
  SendOperation(ConnectionState& c, std::string_view data) noexcept;
  SendOperation(SendOperation&&) noexcept = default;
  ~SendOperation();
  void await_resume() { check("sendall"); }

 protected:
  // What write() holds goes first (WriteBuffer), then rest_: replies leave in order.
  static bool attempt(IoWaiter& self);
  std::string_view rest_;
  bool in_flight_ = false;  // a queued send has not completed yet
};

// write() and flush(): sends what the connection holds, then `data` (without copying it, when
// nothing is held); or, when `send` is false, completes at once without a syscall (write()
// held the bytes).
class WriteOperation : public SendOperation {
 public:
  WriteOperation(ConnectionState& c, std::string_view data, bool send) noexcept
      : SendOperation(c, data), send_(send) {}
  bool await_ready() const noexcept { return !send_; }
  void await_resume() {
    if (send_) check("write");
  }

 private:
  bool send_;
};

// sendall(BufferLease&&): sends from the caller's lease, which stays where it is (in the
// awaiting frame, or a temporary of the co_await's expression) until the operation is over,
// and is emptied (its buffer given back) once every byte went out. A pointer, not a second
// lease: the frame of an idle connection's handler holds this operation.
class SendLeaseOperation : public SendOperation {
 public:
  SendLeaseOperation(ConnectionState& c, BufferLease& lease) noexcept
      : SendOperation(c, lease.view()), lease_(&lease) {}
  void await_resume() {
    SendOperation::await_resume();
    lease_->reset();
  }

 private:
  BufferLease* lease_;
};

// The buffered reads (readline, read_exact, read_frame): one operation that receives into the
// connection's buffer until its message is there - no coroutine frame per call. While it waits
// with an empty buffer the buffer is freed (receives go through the thread's scratch buffer), so
// an idle connection owns none. The whole call has one deadline: the wait registered when it
// begins, with the connection's timeout, lasts until the message is complete, so a peer
// trickling a byte at a time is cut off.
class BufferedReadOperation : public IoOperation {
 protected:
  // Takes the message from the buffer if it is complete (at_eof: the peer has closed, take what
  // there is or throw); true when the operation is over.
  using Take = bool (*)(BufferedReadOperation& self, Buffer& in, bool at_eof);
  BufferedReadOperation(ConnectionState& c, Take take) noexcept
      : IoOperation(c, true), take_(take) {
    perform = &BufferedReadOperation::attempt;
  }
  // Throws what check() throws, then what the parsing threw.
  void finish(std::string_view operation) const;

 private:
  static bool attempt(IoWaiter& self);
  Take take_;
  std::exception_ptr failure_;
};

class ReadlineOperation : public BufferedReadOperation {
 public:
  ReadlineOperation(ConnectionState& c, std::size_t max_len) noexcept
      : BufferedReadOperation(c, &ReadlineOperation::take), max_len_(max_len) {}
  std::string await_resume() {
    finish("readline");
    return std::move(line_);
  }

 private:
  static bool take(BufferedReadOperation& self, Buffer& in, bool at_eof);
  std::size_t max_len_;
  std::size_t searched_ = 0;  // bytes known to hold no '\n': no quadratic rescans
  std::string line_;
};

class ReadExactOperation : public BufferedReadOperation {
 public:
  ReadExactOperation(ConnectionState& c, std::size_t n) noexcept
      : BufferedReadOperation(c, &ReadExactOperation::take), n_(n) {}
  std::string await_resume() {
    finish("read_exact");
    return std::move(data_);
  }

 private:
  static bool take(BufferedReadOperation& self, Buffer& in, bool at_eof);
  std::size_t n_;
  std::string data_;
};

class ReadFrameOperation : public BufferedReadOperation {
 public:
  ReadFrameOperation(ConnectionState& c, const Codec& codec) noexcept
      : BufferedReadOperation(c, &ReadFrameOperation::take), codec_(&codec) {}
  std::optional<std::string> await_resume() {
    finish("read_frame");
    return std::move(message_);
  }

 private:
  static bool take(BufferedReadOperation& self, Buffer& in, bool at_eof);
  const Codec* codec_;
  std::size_t scanned_ = 0;
  std::optional<std::string> message_;
};

// A PROXY protocol v1/v2 header (read_proxy_header); bytes after it stay in the buffer.
class ReadProxyHeaderOperation : public BufferedReadOperation {
 public:
  explicit ReadProxyHeaderOperation(ConnectionState& c) noexcept
      : BufferedReadOperation(c, &ReadProxyHeaderOperation::take) {}
  ProxyHeader await_resume() {
    finish("PROXY header");
    return std::move(header_);
  }

 private:
  static bool take(BufferedReadOperation& self, Buffer& in, bool at_eof);
  ProxyHeader header_;
};

}  // namespace detail

}  // namespace sockserv::aio
