// SPDX-License-Identifier: MIT
#include <sockserv/aio/connection.hpp>
#include <sockserv/error.hpp>
#include <sockserv/proxy_protocol.hpp>

#include "sys/fd.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace sockserv::aio {
namespace detail {
namespace {

// recv() target for recv(): one per thread, so a connection owns no receive buffer while idle.
// Allocated on first use: as a thread_local array it would be 64 KiB of static TLS that glibc
// zero-fills in every thread of the program, event loop or not.
constexpr std::size_t scratch_size = 65536;
char* scratch() {
  thread_local std::unique_ptr<char[]> buffer;
  if (!buffer) buffer = std::make_unique_for_overwrite<char[]>(scratch_size);
  return buffer.get();
}

ssize_t recv_some(int fd, void* into, std::size_t n) noexcept {
  return sys::retry_eintr([&] { return ::recv(fd, into, n, 0); });
}

// One recv() into the thread's scratch buffer, with the bookkeeping every string-returning
// receive shares. Returns the byte count, or -1 with errno (EAGAIN included).
ssize_t recv_to_scratch(ConnectionState& c, std::size_t max) noexcept {
  if (!c.maybe_readable && !c.read_closed) {
    errno = EAGAIN;
    return -1;
  }
  const auto want = std::min(max, scratch_size);
  const auto n = recv_some(c.sock.fileno(), scratch(), want);
  if (n >= 0) {
    c.bytes_in += static_cast<std::size_t>(n);
    if (n == 0) c.eof = true;
    if (n > 0 && static_cast<std::size_t>(n) < want) c.maybe_readable = false;
  } else if (sys::would_block(errno)) {
    c.maybe_readable = false;
  }
  return n;
}

}  // namespace

bool IoOperation::begin() {
  if (cancel && cancel->cancelled) {
    error = ECANCELED;
    return false;
  }
  if (perform && perform(*this)) return false;  // done at once: no suspension
  auto& c = conn();
  std::optional<Clock::time_point> until;
  if (c.call_deadline != ConnectionState::no_deadline) {
    until = c.call_deadline;
  } else if (c.timeout.count() >= 0) {
    until = Clock::now() + c.timeout;
  }
  return c.loop->wait_io(*this, until);
}

void IoOperation::check(std::string_view operation) const {
  auto where = [this] {
    return conn().peer_override ? conn().peer_override->to_string() : std::string();
  };
  if (error == ETIMEDOUT)
    throw_error(std::make_error_code(std::errc::timed_out), operation, where());
  if (error == ECANCELED) {
    throw_error(std::make_error_code(std::errc::operation_canceled), operation, where());
  }
  if (sys_error_) throw_error({sys_error_, std::generic_category()}, operation, where());
}

RecvOperation::RecvOperation(ConnectionState& c, std::span<char> into, bool use_buffered) noexcept
    : IoOperation(c, true), into_(into), use_buffered_(use_buffered) {
  perform = &RecvOperation::attempt;
}

bool RecvOperation::attempt(IoWaiter& self) {
  auto& op = static_cast<RecvOperation&>(self);
  auto& in = op.conn().in;
  if (op.use_buffered_ && !in.empty()) {
    op.received_ = std::min(in.size(), op.into_.size());
    std::memcpy(op.into_.data(), in.data(), op.received_);
    in.consume(op.received_);
    in.release();
    return true;
  }
  auto& io = op.conn();
  if (!io.maybe_readable && !io.read_closed) return false;  // nothing since a short read
  const auto n = recv_some(op.conn().sock.fileno(), op.into_.data(), op.into_.size());
  if (n >= 0) {
    op.received_ = static_cast<std::size_t>(n);
    op.conn().bytes_in += op.received_;
    if (n == 0) op.conn().eof = true;
    if (n > 0 && op.received_ < op.into_.size()) io.maybe_readable = false;
    return true;
  }
  if (sys::would_block(errno)) {
    io.maybe_readable = false;
    return false;
  }
  op.sys_error_ = errno;
  return true;
}

RecvStringOperation::RecvStringOperation(ConnectionState& c, std::size_t max) noexcept
    : IoOperation(c, true), max_(max) {
  perform = &RecvStringOperation::attempt;
}

bool RecvStringOperation::attempt(IoWaiter& self) {
  auto& op = static_cast<RecvStringOperation&>(self);
  auto& in = op.conn().in;
  if (!in.empty()) {
    const auto take = std::min(in.size(), op.max_);
    op.data_.assign(in.data(), take);
    in.consume(take);
    in.release();
    return true;
  }
  const auto n = recv_to_scratch(op.conn(), op.max_);
  if (n >= 0) {
    op.data_.assign(scratch(), static_cast<std::size_t>(n));
    return true;
  }
  if (sys::would_block(errno)) return false;
  op.sys_error_ = errno;
  return true;
}

RecvToStringOperation::RecvToStringOperation(ConnectionState& c, std::string& into,
                                             std::size_t max) noexcept
    : IoOperation(c, true),
      max_(static_cast<std::uint32_t>(std::min(max, scratch_size))),
      into_(&into) {
  perform = &RecvToStringOperation::attempt;
}

bool RecvToStringOperation::attempt(IoWaiter& self) {
  auto& op = static_cast<RecvToStringOperation&>(self);
  auto& in = op.conn().in;
  if (!in.empty()) {
    const auto take = std::min<std::size_t>(in.size(), op.max_);
    op.into_->assign(in.data(), take);
    in.consume(take);
    in.release();
    return true;
  }
  const auto n = recv_to_scratch(op.conn(), op.max_);
  if (n >= 0) {
    op.into_->assign(scratch(), static_cast<std::size_t>(n));
    return true;
  }
  if (sys::would_block(errno)) {
    // About to wait, maybe for long: an idle connection keeps no buffer, not even the caller's
    // (one small allocation per wait buys that; a busy connection rarely waits).
    std::string().swap(*op.into_);
    return false;
  }
  op.sys_error_ = errno;
  return true;
}

SendOperation::SendOperation(ConnectionState& c, std::string_view data) noexcept
    : IoOperation(c, false), rest_(data) {
  perform = &SendOperation::attempt;
}

bool SendOperation::attempt(IoWaiter& self) {
  // The HOWTO's send loop, non-blocking: offer the rest until the kernel has taken it all or its
  // buffer is full (EAGAIN: wait for the peer to read).
  auto& op = static_cast<SendOperation&>(self);
  while (!op.rest_.empty()) {
    const auto n = sys::retry_eintr([&] {
      return ::send(op.conn().sock.fileno(), op.rest_.data(), op.rest_.size(), MSG_NOSIGNAL);
    });
    if (n < 0) {
      if (sys::would_block(errno)) return false;
      op.sys_error_ = errno;
      return true;
    }
    op.rest_.remove_prefix(static_cast<std::size_t>(n));
    op.conn().bytes_out += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace detail

Connection::Connection(Socket sock) : state_(std::make_unique<detail::ConnectionState>()) {
  state_->loop = EventLoop::current();
  if (!state_->loop) throw std::logic_error("Connection: no event loop runs on this thread");
  if (sock.getblocking()) sock.setblocking(false);
  state_->sock = std::move(sock);
  state_->fd = state_->sock.fileno();
  state_->edge_triggered = true;
  state_->loop->add_io(*state_);
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    close();
    state_ = std::move(other.state_);
  }
  return *this;
}

Connection::~Connection() { close(); }

void Connection::set_owner(CancelState* owner) noexcept {
  auto& io = *state_;
  if (io.owner && io.owner->hangup_watch == &io) io.owner->hangup_watch = nullptr;
  if (owner && owner->hangup_watch) owner->hangup_watch->owner = nullptr;  // one each
  io.owner = owner;
  if (owner) owner->hangup_watch = &io;
}

void Connection::close() noexcept {
  if (!state_) return;
  set_owner(nullptr);  // the owner may outlive this connection's state
  if (!state_->sock) return;
  if (state_->stats) {
    ServerStats::add(state_->stats->bytes_in, state_->bytes_in);
    ServerStats::add(state_->stats->bytes_out, state_->bytes_out);
  }
  state_->loop->remove_io(*state_);
  state_->sock.close();
  state_->fd = -1;
}

Address Connection::peer_address() const {
  if (state_->peer_override) return *state_->peer_override;
  return state_->sock.getpeername();
}

void Connection::shutdown(int how) { state_->sock.shutdown(how); }

detail::RecvStringOperation Connection::recv(std::size_t max) { return {*state_, max}; }

detail::RecvToStringOperation Connection::recv(std::string& into, std::size_t max) {
  return {*state_, into, max};
}

detail::RecvOperation Connection::recv_into(std::span<char> buffer) {
  return {*state_, buffer, true};
}

detail::SendOperation Connection::sendall(std::string_view data) { return {*state_, data}; }

struct Connection::CallDeadline {
  explicit CallDeadline(detail::ConnectionState& c) : state(c) {
    if (c.timeout.count() >= 0 && c.call_deadline == detail::ConnectionState::no_deadline) {
      c.call_deadline = Clock::now() + c.timeout;
      armed = true;
    }
  }
  CallDeadline(const CallDeadline&) = delete;
  CallDeadline& operator=(const CallDeadline&) = delete;
  ~CallDeadline() {
    if (armed) state.call_deadline = detail::ConnectionState::no_deadline;
  }
  detail::ConnectionState& state;
  bool armed = false;
};

Task<bool> Connection::receive_more() {
  if (state_->eof) co_return false;
  auto room = state_->in.prepare(16384);
  const std::size_t n = co_await detail::RecvOperation(*state_, room, false);
  state_->in.commit(n);
  co_return n > 0;
}

Task<std::string> Connection::read_exact(std::size_t n) {
  auto& in = state_->in;
  const CallDeadline deadline(*state_);
  while (in.size() < n) {
    if (!co_await receive_more()) {
      throw_error(errc::connection_broken, "read_exact",
                  "(got " + std::to_string(in.size()) + " of " + std::to_string(n) + " bytes)");
    }
  }
  std::string out(in.data(), n);
  in.consume(n);
  in.release();
  co_return out;
}

Task<std::string> Connection::readline(std::size_t max_len) {
  auto& in = state_->in;
  const CallDeadline deadline(*state_);
  std::size_t searched = 0;  // bytes known to hold no '\n': no quadratic rescans
  for (;;) {
    const auto view = in.view();
    const auto limit = std::min(view.size(), max_len);
    if (searched < limit) {
      if (const auto* nl = static_cast<const char*>(
              std::memchr(view.data() + searched, '\n', limit - searched))) {
        std::string line(view.data(), static_cast<std::size_t>(nl - view.data()) + 1);
        in.consume(line.size());
        in.release();
        co_return line;
      }
    }
    if (view.size() >= max_len) {
      throw_error(errc::line_too_long, "readline",
                  "(no newline within " + std::to_string(max_len) + " bytes)");
    }
    searched = view.size();
    if (!co_await receive_more()) {  // EOF: the last line may lack its '\n'
      std::string rest(in.view());
      in.consume(rest.size());
      in.release();
      co_return rest;
    }
  }
}

Task<std::optional<std::string>> Connection::read_frame(const Codec& codec) {
  auto& in = state_->in;
  if (state_->eof && in.empty()) co_return std::nullopt;
  const CallDeadline deadline(*state_);
  std::size_t scanned = 0;
  for (;;) {
    if (const auto frame = codec.parse(in.view(), scanned)) {
      std::string message = frame->message(in.view());
      in.consume(frame->wire_size);
      in.release();
      co_return message;
    }
    if (!co_await receive_more()) {
      const auto frame = codec.parse_eof(in.view());  // throws for a partial frame
      std::optional<std::string> message;
      if (frame) message.emplace(frame->message(in.view()));
      in.consume(in.size());
      in.release();
      co_return message;
    }
  }
}

Task<void> Connection::write_frame(const Codec& codec, std::string_view message) {
  const std::string wire = codec.encode(message);
  co_await sendall(wire);
}

Task<ProxyHeader> read_proxy_header(Connection& conn) {
  auto& in = conn.read_buffer();
  // The whole header within one timeout, as the other buffered reads: a balancer never trickles.
  const Connection::CallDeadline deadline(*conn.state_);
  for (;;) {
    if (auto parsed = parse_proxy_header(in.view())) {
      in.consume(parsed->size);
      co_return std::move(parsed->header);
    }
    if (!co_await conn.receive_more()) {
      throw_error(errc::malformed_frame, "PROXY header", "(connection closed before it ended)");
    }
  }
}

Task<Connection> open_connection(Address address, Timeout timeout) {
  Socket sock(address.family(), SOCK_STREAM);
  sock.setblocking(false);
  const int rc = ::connect(sock.fileno(), address.data(), address.size());
  if (rc != 0 && errno != EINPROGRESS) throw_errno("connect", address.to_string());
  Connection conn(std::move(sock));
  if (rc != 0) {
    conn.settimeout(timeout);
    try {
      co_await detail::WaitOperation(*conn.state_, false);
    } catch (const TimeoutError&) {
      throw_error(std::make_error_code(std::errc::timed_out), "connect", address.to_string());
    }
    conn.settimeout(std::nullopt);
    if (const auto ec = conn.socket().get_error()) throw_error(ec, "connect", address.to_string());
  }
  co_return conn;
}

}  // namespace sockserv::aio
