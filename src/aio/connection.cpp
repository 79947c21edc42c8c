// SPDX-License-Identifier: MIT
#include <sockserv/aio/connection.hpp>
#include <sockserv/error.hpp>
#include <sockserv/proxy_protocol.hpp>

#include "aio/reactor.hpp"
#include "block_pool.hpp"
#include "sys/fd.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
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

// recv/send through the socket's layer if it has one. A layer that waits for readiness reads as
// EAGAIN: the operation waits in its own direction (a TLS write that needs to read, or a read
// that needs to write, only happens for a KeyUpdate meeting a full buffer: renegotiation is off).
ssize_t recv_some(const Socket& sock, void* into, std::size_t n) noexcept {
  if (auto* layer = sock.layer()) {
    short want = 0;
    std::error_code ec;
    const auto got = layer->read_some({static_cast<char*>(into), n}, want, ec);
    if (got < 0) errno = ec ? operation_error(ec) : EAGAIN;
    return got;
  }
  return sys::retry_eintr([&] { return ::recv(sock.fileno(), into, n, 0); });
}

ssize_t send_some(const Socket& sock, std::string_view data) noexcept {
  if (auto* layer = sock.layer()) {
    short want = 0;
    std::error_code ec;
    const auto put = layer->write_some(data, want, ec);
    if (put < 0) errno = ec ? operation_error(ec) : EAGAIN;
    return put;
  }
  return sys::retry_eintr(
      [&] { return ::send(sock.fileno(), data.data(), data.size(), MSG_NOSIGNAL); });
}

// One recv() into `into`, with the bookkeeping every receive shares: skipped (EAGAIN) while
// nothing can have arrived since a short read. Returns the byte count, or -1 with errno.
ssize_t receive_some(ConnectionState& c, std::span<char> into) noexcept {
  if (c.completion_reads) {  // the backend received already (io_uring): no syscall
    const auto n = c.loop->reactor().take_into(c, into);
    if (n > 0) c.bytes_in += static_cast<std::size_t>(n);
    if (n == 0) c.eof = true;
    return n;
  }
  if (!c.maybe_readable && !c.read_closed) {
    errno = EAGAIN;
    return -1;
  }
  const auto n = recv_some(c.sock, into.data(), into.size());
  if (n >= 0) {
    c.bytes_in += static_cast<std::size_t>(n);
    if (n == 0) c.eof = true;
    // A short read means the kernel had no more, except over TLS: a read returns one record,
    // and the next may be waiting in the kernel already (no new edge would come for it).
    if (n > 0 && static_cast<std::size_t>(n) < into.size() && !c.sock.layer()) {
      c.maybe_readable = false;
    }
  } else if (sys::would_block(errno)) {
    c.maybe_readable = false;
  }
  return n;
}

// The same into the thread's scratch buffer (the string-returning receives copy from there).
ssize_t recv_to_scratch(ConnectionState& c, std::size_t max) noexcept {
  return receive_some(c, {scratch(), std::min(max, scratch_size)});
}

// The string-returning receives: at most `max` bytes of what is buffered, else of one recv()
// (through the scratch buffer), into `out`. Returns 0, EAGAIN (wait) or the recv() error.
int receive_string(ConnectionState& c, std::string& out, std::size_t max) {
  if (!c.in.empty()) {
    const auto take = std::min(c.in.size(), max);
    out.assign(c.in.data(), take);
    c.in.consume(take);
    c.in.release();
    return 0;
  }
  const auto n = recv_to_scratch(c, max);
  if (n >= 0) {
    out.assign(scratch(), static_cast<std::size_t>(n));
    return 0;
  }
  return sys::would_block(errno) ? EAGAIN : errno;
}

// What a buffered read receives at a time straight into a connection's buffer.
constexpr std::size_t buffered_chunk = 16384;

// Sends what write() holds with non-blocking send(2) calls until it is all gone (true), the
// kernel's buffer is full (false) or the send fails (true: dropped, the next send reports it).
bool drain_held(ConnectionState& c) noexcept {
  auto& out = *c.out;
  while (!out.pending().empty()) {
    const auto n = send_some(c.sock, out.pending());
    if (n < 0) {
      if (sys::would_block(errno)) return false;
      out.drop();
      return true;
    }
    c.bytes_out += static_cast<std::size_t>(n);
    out.advance(static_cast<std::size_t>(n));
  }
  return true;
}

bool flusher_attempt(IoWaiter& self) {
  return drain_held(static_cast<ConnectionState&>(*self.state));
}

// A read is about to wait while write() holds replies: the peer may be waiting for them, so
// they go now. What the kernel does not take at once goes when the socket becomes writable
// (the flusher waits in the writer's place; a write operation that comes first takes over).
// Not while a write operation waits: it sends the held bytes itself, in order.
void flush_before_wait(ConnectionState& c) {
  if (c.writer != nullptr || drain_held(c)) return;
  auto& flusher = c.out->flusher;
  flusher.state = &c;
  flusher.is_reader = false;
  flusher.handle = std::noop_coroutine();
  flusher.cancel = nullptr;
  flusher.perform = &flusher_attempt;
  c.loop->wait_io(flusher, std::nullopt);
}

}  // namespace

bool IoOperation::begin() {
  if (cancel && cancel->cancelled) {
    error = ECANCELED;
    return false;
  }
  auto& c = conn();
  if (perform) {
    const auto moved_before = c.bytes_in + c.bytes_out;
    if (perform(*this)) {
      // Done at once: no suspension, while the coroutine's budget lasts. Past it, the result
      // waits for the next iteration, so the loop polls and the other connections run first.
      if (c.loop->spend_budget(c.bytes_in + c.bytes_out - moved_before)) return false;
      c.loop->resume_soon(handle);
      return true;
    }
  }
  // A read about to wait sends the replies write() held first (the peer may wait for them).
  if (is_reader && c.out && !c.out->pending().empty()) flush_before_wait(c);
  // A read about to wait: a backend that receives by completion (io_uring) takes over from
  // here, for the connection's life (not under a layer, which reads the socket itself).
  if (is_reader && !c.completion_reads && !c.syscall_reads && c.sock.layer() == nullptr) {
    c.loop->reactor().start_receiving(c);
  }
  // A read with nothing buffered is an idle wait (between requests) when the connection has an
  // idle timeout; any other wait is a request's and gets the timeout.
  const bool idle =
      is_reader && c.idle_timeout != ConnectionState::no_idle_mode && c.in.empty() && !c.eof;
  const auto limit = idle ? c.idle_timeout : c.timeout;
  std::optional<Clock::time_point> until;
  if (limit.count() >= 0) until = Clock::now() + limit;
  return c.loop->wait_io(*this, until);
}

int operation_error(const std::error_code& ec) noexcept {
  return ec.category() == ssl_category() ? tls_error_base + ec.value() : ec.value();
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
  if (sys_error_ > tls_error_base) {
    const auto* layer = conn().sock.layer();
    std::string detail = where();
    if (layer != nullptr) detail += (detail.empty() ? "(" : " (") + layer->error_detail() + ")";
    throw_error(make_error_code(static_cast<ssl_errc>(sys_error_ - tls_error_base)), operation,
                detail);
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
  const auto n = receive_some(op.conn(), op.into_);
  if (n >= 0) {
    op.received_ = static_cast<std::size_t>(n);
    return true;
  }
  if (sys::would_block(errno)) return false;
  op.sys_error_ = errno;
  return true;
}

RecvStringOperation::RecvStringOperation(ConnectionState& c, std::size_t max) noexcept
    : IoOperation(c, true), max_(max) {
  perform = &RecvStringOperation::attempt;
}

bool RecvStringOperation::attempt(IoWaiter& self) {
  auto& op = static_cast<RecvStringOperation&>(self);
  const int error = receive_string(op.conn(), op.data_, op.max_);
  if (error == EAGAIN) return false;
  op.sys_error_ = error;
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
  const int error = receive_string(op.conn(), *op.into_, op.max_);
  if (error == EAGAIN) {
    // About to wait, maybe for long: an idle connection keeps no buffer, not even the caller's
    // (one small allocation per wait buys that; a busy connection rarely waits).
    std::string().swap(*op.into_);
    return false;
  }
  op.sys_error_ = error;
  return true;
}

RecvLeaseOperation::RecvLeaseOperation(ConnectionState& c, std::size_t max) noexcept
    : IoOperation(c, true),
      max_(static_cast<std::uint32_t>(std::min(max, BufferLease::block_size))) {
  perform = &RecvLeaseOperation::attempt;
}

bool RecvLeaseOperation::attempt(IoWaiter& self) {
  auto& op = static_cast<RecvLeaseOperation&>(self);
  auto& c = op.conn();
  auto* const source = block_pool_source();
  if (!c.in.empty()) {  // left over by a buffered read: those bytes come first
    const auto take = std::min<std::size_t>(c.in.size(), op.max_);
    char* block = take_block();
    std::memcpy(block, c.in.data(), take);
    c.in.consume(take);
    c.in.release();
    op.lease_ = BufferLease(block, take, source);
    return true;
  }
  if (c.completion_reads) {
    const auto before = op.lease_.size();
    if (c.loop->reactor().take_lease(c, op.max_, op.lease_)) {  // the backend's buffer itself
      c.bytes_in += op.lease_.size() - before;
      return true;
    }
  } else if (!c.maybe_readable && !c.read_closed) {
    return false;  // nothing new: wait, holding nothing
  }
  char* block = take_block();
  const auto n = receive_some(c, {block, op.max_});
  if (n > 0) {
    op.lease_ = BufferLease(block, static_cast<std::size_t>(n), source);
    return true;
  }
  give_back_block(block);  // EOF (an empty lease), a wait, or an error: the block goes back
  if (n == 0) return true;
  if (sys::would_block(errno)) return false;
  op.sys_error_ = errno;
  return true;
}

SendOperation::SendOperation(ConnectionState& c, std::string_view data) noexcept
    : IoOperation(c, false), rest_(data) {
  perform = &SendOperation::attempt;
}

SendOperation::~SendOperation() {
  if (!in_flight_) return;
  conn().loop->reactor().cancel_send(conn());
  // How much of the cancelled send went out is unknown: what write() held cannot be resent.
  if (conn().out) conn().out->drop();
}

bool SendOperation::attempt(IoWaiter& self) {
  // The HOWTO's send loop, non-blocking: offer the bytes until the kernel has taken them all or
  // its buffer is full (EAGAIN: wait for the peer to read). What write() held goes first, then
  // this operation's own bytes, so replies leave in the order they were made.
  auto& op = static_cast<SendOperation&>(self);
  auto& c = op.conn();
  auto& reactor = c.loop->reactor();
  WriteBuffer* const out = c.out.get();
  if (out != nullptr) EventLoop::forget_wait(out->flusher);  // this operation sends them now
  // Credits `n` sent bytes to what next() returned.
  auto next = [&] { return out && !out->pending().empty() ? out->pending() : op.rest_; };
  auto advance = [&](std::size_t n) {
    if (out && !out->pending().empty()) {
      out->advance(n);
    } else {
      op.rest_.remove_prefix(n);
    }
    c.bytes_out += n;
  };
  auto fail = [&](int error) {
    op.sys_error_ = error;
    if (out) out->drop();  // the stream is broken: what was held can never arrive whole
    return true;
  };
  if (op.in_flight_) {
    int result = 0;
    if (!reactor.take_send_result(c, result)) return false;  // still going
    op.in_flight_ = false;
    if (result < 0) return fail(-result);
    advance(static_cast<std::size_t>(result));
  }
  for (std::string_view bytes = next(); !bytes.empty(); bytes = next()) {
    // By completion (io_uring): queued, sent with the loop's next wait. Not under a layer,
    // which writes the socket itself.
    if (c.sock.layer() == nullptr && reactor.can_send() && reactor.submit_send(c, bytes)) {
      op.in_flight_ = true;
      return false;
    }
    const auto n = send_some(c.sock, bytes);
    if (n < 0) {
      if (sys::would_block(errno)) return false;
      return fail(errno);
    }
    advance(static_cast<std::size_t>(n));
  }
  return true;
}

bool BufferedReadOperation::attempt(IoWaiter& self) {
  auto& op = static_cast<BufferedReadOperation&>(self);
  auto& c = op.conn();
  try {
    for (;;) {
      if (op.take_(op, c.in, c.eof)) return true;
      // A busy connection receives straight into its buffer; otherwise through the scratch
      // buffer, so that a wait never holds an empty buffer.
      const bool direct = c.in.capacity() >= buffered_chunk;
      const auto n = direct ? receive_some(c, c.in.prepare(buffered_chunk))
                            : receive_some(c, {scratch(), scratch_size});
      if (n < 0) {
        if (!sys::would_block(errno)) {
          op.sys_error_ = errno;
          return true;
        }
        c.in.release();  // frees it only when empty
        // The first bytes of a request ended an idle wait: the rest comes under the timeout.
        if (!c.in.empty() && c.timeout.count() >= 0) {
          c.loop->shorten_io_deadline(op, Clock::now() + c.timeout);
        }
        return false;
      }
      if (direct) {
        c.in.commit(static_cast<std::size_t>(n));
      } else {
        c.in.append({scratch(), static_cast<std::size_t>(n)});
      }
    }
  } catch (...) {  // a limit or a malformed frame: thrown to the awaiter by finish()
    op.failure_ = std::current_exception();
    return true;
  }
}

void BufferedReadOperation::finish(std::string_view operation) const {
  check(operation);
  if (failure_) std::rethrow_exception(failure_);
}

bool ReadlineOperation::take(BufferedReadOperation& self, Buffer& in, bool at_eof) {
  auto& op = static_cast<ReadlineOperation&>(self);
  const auto view = in.view();
  const auto limit = std::min(view.size(), op.max_len_);
  if (op.searched_ < limit) {
    if (const auto* nl = static_cast<const char*>(
            std::memchr(view.data() + op.searched_, '\n', limit - op.searched_))) {
      op.line_.assign(view.data(), static_cast<std::size_t>(nl - view.data()) + 1);
      in.consume(op.line_.size());
      return true;
    }
  }
  if (view.size() >= op.max_len_) {
    throw_error(errc::line_too_long, "readline",
                "(no newline within " + std::to_string(op.max_len_) + " bytes)");
  }
  op.searched_ = view.size();
  if (!at_eof) return false;
  op.line_.assign(view);  // the last line may lack its '\n'; "" at EOF
  in.consume(view.size());
  return true;
}

bool ReadExactOperation::take(BufferedReadOperation& self, Buffer& in, bool at_eof) {
  auto& op = static_cast<ReadExactOperation&>(self);
  if (in.size() >= op.n_) {
    op.data_.assign(in.data(), op.n_);
    in.consume(op.n_);
    return true;
  }
  if (!at_eof) return false;
  throw_error(errc::connection_broken, "read_exact",
              "(got " + std::to_string(in.size()) + " of " + std::to_string(op.n_) + " bytes)");
}

bool ReadProxyHeaderOperation::take(BufferedReadOperation& self, Buffer& in, bool at_eof) {
  auto& op = static_cast<ReadProxyHeaderOperation&>(self);
  if (auto parsed = parse_proxy_header(in.view())) {
    op.header_ = std::move(parsed->header);
    in.consume(parsed->size);
    return true;
  }
  if (!at_eof) return false;
  throw_error(errc::malformed_frame, "PROXY header", "(connection closed before it ended)");
}

bool ReadFrameOperation::take(BufferedReadOperation& self, Buffer& in, bool at_eof) {
  auto& op = static_cast<ReadFrameOperation&>(self);
  if (const auto frame = op.codec_->parse(in.view(), op.scanned_)) {
    op.message_.emplace(frame->message(in.view()));
    in.consume(frame->wire_size);
    return true;
  }
  if (!at_eof) return false;
  // nullopt when the peer closed between messages; parse_eof throws for a partial frame.
  if (const auto frame = op.codec_->parse_eof(in.view())) {
    op.message_.emplace(frame->message(in.view()));
  }
  in.consume(in.size());
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
  if (auto& out = state_->out) {
    // Replies write() still holds: one attempt that does not wait (aclose() waits).
    if (state_->writer == nullptr) (void)detail::drain_held(*state_);
    EventLoop::forget_wait(out->flusher);
    out.reset();
  }
  if (state_->stats) {
    ServerStats::add(state_->stats->bytes_in, state_->bytes_in);
    ServerStats::add(state_->stats->bytes_out, state_->bytes_out);
  }
  state_->loop->remove_io(*state_);
  if (auto* layer = state_->sock.layer()) {
    // TLS: close_notify, one attempt that does not wait (a socket buffer has room for it but
    // when the peer stopped reading). aclose() is the version that waits for the peer's.
    short want = 0;
    std::error_code ec;
    layer->close_some(want, ec);
  }
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

detail::WriteOperation Connection::write(std::string_view data) {
  auto& c = *state_;
  const bool input_dry = c.in.empty();
  if (!c.out || c.out->pending().empty()) {
    if (input_dry) return {c, data, true};  // nothing to batch with: sent as sendall() does
    if (!c.out) c.out = std::make_unique<detail::WriteBuffer>();
  }
  c.out->bytes.append(data);
  return {c, {}, input_dry || c.out->pending().size() >= c.write_limit};
}

detail::WriteOperation Connection::flush() {
  return {*state_, {}, state_->out && !state_->out->pending().empty()};
}

std::size_t Connection::buffered_input() const noexcept { return state_->in.size(); }

std::size_t Connection::buffered_output() const noexcept {
  return state_->out ? state_->out->pending().size() : 0;
}

void Connection::set_write_buffer_limit(std::size_t bytes) noexcept {
  state_->write_limit = static_cast<std::uint32_t>(
      std::clamp<std::size_t>(bytes, 1, std::numeric_limits<std::uint32_t>::max()));
}

Task<bool> Connection::receive_more() {
  if (state_->eof) co_return false;
  // Into the scratch buffer, then appended: the connection's buffer is not grown while waiting.
  char* const scratch = detail::scratch();
  const std::size_t n =
      co_await detail::RecvOperation(*state_, {scratch, detail::scratch_size}, false);
  state_->in.append(std::string_view(scratch, n));
  co_return n > 0;
}

Task<void> Connection::write_frame(const Codec& codec, std::string_view message) {
  const std::string wire = codec.encode(message);
  co_await sendall(wire);
}

Task<ProxyHeader> read_proxy_header(Connection& conn) {
  co_return co_await detail::ReadProxyHeaderOperation(*conn.state_);
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
