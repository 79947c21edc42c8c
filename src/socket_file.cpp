// SPDX-License-Identifier: MIT
#include <sockserv/error.hpp>
#include <sockserv/socket_file.hpp>

#include <algorithm>
#include <cstring>

namespace sockserv {
namespace {

// Makes one buffered read obey the socket's timeout as a whole (as recv_exact and sendall do):
// while it lives, the file's receives share one deadline, now + timeout. Only the file's own
// state changes, so a thread writing to the same socket meanwhile is not affected.
class WholeCallDeadline {
 public:
  WholeCallDeadline(const Socket& sock, std::optional<std::chrono::steady_clock::time_point>& slot)
      : slot_(slot) {
    const auto timeout = sock.gettimeout();
    if (timeout && timeout->count() > 0 && !slot_) {
      slot_ = std::chrono::steady_clock::now() + *timeout;
      armed_ = true;
    }
  }
  WholeCallDeadline(const WholeCallDeadline&) = delete;
  WholeCallDeadline& operator=(const WholeCallDeadline&) = delete;
  ~WholeCallDeadline() {
    if (armed_) slot_.reset();
  }

 private:
  std::optional<std::chrono::steady_clock::time_point>& slot_;
  bool armed_ = false;
};

}  // namespace

SocketFile::SocketFile(Socket& sock, std::size_t read_buffer_size,
                       std::size_t write_buffer_size) noexcept
    : sock_(&sock),
      read_chunk_(std::max<std::size_t>(read_buffer_size, 1)),
      write_buffer_size_(write_buffer_size) {}

SocketFile::~SocketFile() {
  try {
    if (!closed_) flush();
  } catch (const SocketError&) {
    // A destructor must not throw; a caller who cares about the last bytes calls close().
  }
}

bool SocketFile::fill() {
  if (eof_) return false;
  auto room = in_.prepare(read_chunk_);
  const auto n = receive(room.first(std::min(room.size(), read_chunk_)));
  in_.commit(n);
  return n > 0;
}

void SocketFile::await_input() {
  if (!idle_ || !in_.empty() || eof_ || call_deadline_) return;
  // The input ran dry: replies a linked wfile holds go out before the (idle) wait, as receive()
  // does; else a pipelined client would wait for them while we wait for it.
  if (flush_first_ != nullptr) flush_first_->flush();
  auto room = in_.prepare(read_chunk_);
  const auto n = sock_->recv_into_idle(room.first(std::min(room.size(), read_chunk_)), *idle_);
  if (n == 0) eof_ = true;
  bytes_received_ += n;
  in_.commit(n);
}

std::size_t SocketFile::receive(std::span<char> into) {
  if (eof_) return 0;
  if (flush_first_ != nullptr) flush_first_->flush();  // the input ran dry: replies go first
  const auto n =
      call_deadline_ ? sock_->recv_into_until(into, *call_deadline_) : sock_->recv_into(into);
  if (n == 0) eof_ = true;
  bytes_received_ += n;
  return n;
}

std::string SocketFile::read(std::size_t n) {
  if (n > 0) await_input();
  const WholeCallDeadline deadline(*sock_, call_deadline_);
  while (in_.size() < n && fill()) {
  }
  const auto take = std::min(n, in_.size());
  std::string out(in_.data(), take);
  in_.consume(take);
  return out;
}

std::string SocketFile::read_exact(std::size_t n) {
  auto out = read(n);
  if (out.size() < n) {
    throw_error(errc::connection_broken, "read_exact",
                "(got " + std::to_string(out.size()) + " of " + std::to_string(n) + " bytes)");
  }
  return out;
}

std::string SocketFile::read1(std::size_t n) {
  await_input();
  if (in_.empty()) fill();
  const auto take = std::min(n, in_.size());
  std::string out(in_.data(), take);
  in_.consume(take);
  return out;
}

std::size_t SocketFile::readinto1(std::span<char> into) {
  if (into.empty()) return 0;
  await_input();
  // Python's BufferedReader does the same: a read as large as the buffer bypasses it.
  if (in_.empty() && into.size() >= read_chunk_) return receive(into);
  if (in_.empty()) fill();
  const auto take = std::min(into.size(), in_.size());
  if (take > 0) std::memcpy(into.data(), in_.data(), take);
  in_.consume(take);
  return take;
}

std::string SocketFile::read_to_eof(std::size_t limit) {
  await_input();
  const WholeCallDeadline deadline(*sock_, call_deadline_);
  while (fill()) {
    if (in_.size() > limit) {
      throw_error(errc::message_too_large, "read_to_eof",
                  "(more than " + std::to_string(limit) + " bytes)");
    }
  }
  return read(in_.size());
}

std::string SocketFile::readline(std::size_t max_len) {
  await_input();
  // Search only the bytes not searched before, so a line arriving one byte at a time costs
  // linear, not quadratic, time; and the whole line must come within the socket's timeout.
  const WholeCallDeadline deadline(*sock_, call_deadline_);
  std::size_t searched = 0;
  for (;;) {
    const auto view = in_.view();
    const auto limit = std::min(view.size(), max_len);
    const auto* nl =
        searched < limit
            ? static_cast<const char*>(std::memchr(view.data() + searched, '\n', limit - searched))
            : nullptr;
    if (nl) return read(static_cast<std::size_t>(nl - view.data()) + 1);
    if (view.size() >= max_len) {
      throw_error(errc::line_too_long, "readline",
                  "(no newline within " + std::to_string(max_len) + " bytes)");
    }
    searched = view.size();
    if (!fill()) return read(in_.size());  // EOF: the last line may lack its '\n'
  }
}

std::size_t SocketFile::write(std::string_view data) {
  // The unbuffered case (wfile's default) is kept apart from the buffering one, so a handler's
  // write per message costs a call to sendall() and little else.
  if (write_buffer_size_ != 0 || closed_) return write_buffered(data);
  sock_->sendall(data);
  bytes_sent_ += data.size();
  return data.size();
}

std::size_t SocketFile::write_buffered(std::string_view data) {
  if (closed_) throw std::logic_error("write to a closed SocketFile");
  if (out_.size() + data.size() > write_buffer_size_) {
    flush();
    if (data.size() >= write_buffer_size_) {  // too big to buffer: straight out
      sock_->sendall(data);
      bytes_sent_ += data.size();
      return data.size();
    }
  }
  out_.append(data);
  return data.size();
}

void SocketFile::flush() {
  if (out_.empty()) return;
  // Clear first: if sendall throws, the connection is broken and the bytes cannot be retried.
  const std::string pending = std::exchange(out_, {});
  sock_->sendall(pending);
  bytes_sent_ += pending.size();
}

void SocketFile::close() {
  if (closed_) return;
  closed_ = true;
  flush();
}

}  // namespace sockserv
