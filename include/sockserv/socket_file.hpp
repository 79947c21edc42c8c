// SPDX-License-Identifier: MIT
/// @file
/// SocketFile: buffered reading and writing over a connected socket (Python's socket.makefile()).
///
/// ```
///   SocketFile f(sock);
///   std::string line = f.readline();          // up to and including '\n'; "" at EOF
///   f.write("HELLO\n");
///   f.flush();                                // <- see the warning below
/// ```
///
/// Reading keeps a buffer (default 8 KiB), so many small reads cost few recv() calls, and every
/// read is bounded: readline(max_len) throws instead of growing without limit when a peer sends
/// an endless line, and read_to_eof(limit) stops at its limit.
///
/// **Write without flush waits forever.**
/// With a write buffer (write_buffer_size > 0), write() keeps the bytes until the buffer is full,
/// flush() or close(). If you then wait for the peer's answer, it waits for your request, which is
/// still in your buffer: both sides wait forever (the HOWTO's deadlock). Call flush() before you
/// read the reply (or let the reading file do it: flush_before_receive()). The default
/// write_buffer_size is 0: every write() is sent at once and whole
/// (sendall), as StreamRequestHandler.wfile does in Python.
///
/// Timeouts: with a socket timeout, each read call (read, read_exact, readline, read_to_eof) must
/// complete within it as a whole, like Socket::recv_exact: a peer that sends one byte a second
/// cannot keep a readline() going forever (TimeoutError). In idle mode (set_idle_timeout(), as
/// the servers' rfile) the wait for the first bytes of a call that finds nothing buffered has its
/// own limit, and the call's deadline starts when they arrive.
///
/// Ownership: does not own the socket, which must outlive the file. Errors are the socket's
/// (error.hpp). Not thread-safe.
#pragma once

#include <sockserv/buffer.hpp>
#include <sockserv/socket.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sockserv {

/// Buffered reads and writes over a connected socket it does not own. Every read call that
/// receives can throw what the socket's receive throws (TimeoutError, ConnectionError,
/// SocketError); every call that sends, what Socket::sendall throws. socket_file.hpp has the
/// timeout rules and the flush warning.
/// @threadsafety Not thread-safe: one thread uses a file (a reading and a writing file over one
/// socket may be used by two threads).
/// @python socket.socket.makefile (a BufferedReader and a BufferedWriter in one)
class SocketFile {
 public:
  /// The read buffer's default size, 8 KiB.
  static constexpr std::size_t default_buffer_size = 8192;
  /// readline()'s default `max_len`, 64 KiB.
  static constexpr std::size_t default_max_line = 65536;

  /// A file over `sock`, which must outlive it. `read_buffer_size` is how much one recv() asks
  /// for; `write_buffer_size` 0 sends every write() at once.
  explicit SocketFile(Socket& sock, std::size_t read_buffer_size = default_buffer_size,
                      std::size_t write_buffer_size = 0) noexcept;
  /// Moves the buffers; the socket stays where it is.
  /// @{
  SocketFile(SocketFile&&) noexcept = default;
  SocketFile& operator=(SocketFile&&) noexcept = default;
  /// @}
  /// Flushes what is left; a failure then is ignored (call flush() or close() to see it).
  ~SocketFile();

  // --- Reading -----------------------------------------------------------------------------------
  /// Up to `n` bytes; fewer only when the peer closed first ("" at EOF).
  /// @python io.BufferedReader.read(n)
  std::string read(std::size_t n);
  /// Exactly `n` bytes.
  /// @throws ConnectionError with errc::connection_broken if the peer closes first.
  std::string read_exact(std::size_t n);
  /// At most `n` bytes with at most one recv(): what is buffered, or what one recv() brings.
  /// @python io.BufferedReader.read1
  std::string read1(std::size_t n = default_buffer_size);
  /// read1 into the caller's memory (Python's readinto1), with no allocation: returns the count
  /// copied into `into`, 0 at EOF. With nothing buffered and `into` at least a buffer's size, the
  /// one recv() goes straight into `into`, so the bytes are not copied twice.
  /// @python io.BufferedReader.readinto1
  std::size_t readinto1(std::span<char> into);
  /// Everything until the peer closes.
  /// @throws SocketError with errc::message_too_large past `limit` bytes.
  /// @python io.BufferedReader.read() (without a limit there)
  std::string read_to_eof(std::size_t limit);
  /// One line, including its newline; the last line may lack it; "" at EOF.
  /// @throws SocketError with errc::line_too_long when no newline comes within `max_len` bytes.
  /// @python io.BufferedReader.readline(size) (which returns the cut line instead)
  std::string readline(std::size_t max_len = default_max_line);
  /// Bytes buffered and not yet read (Python's len(BufferedReader.peek())): a pipelined request
  /// already here can be answered without waiting. buffered() is the older name.
  /// @{
  std::size_t buffered_input() const noexcept { return in_.size(); }
  std::size_t buffered() const noexcept { return in_.size(); }
  /// @}
  /// Before each recv() a read makes, `out` is flushed (nullptr: none; `out` must outlive this
  /// file): the replies a buffered `out` holds go out when the input runs dry, before this side
  /// waits for the peer, so the HOWTO's deadlock (socket_file.hpp) cannot happen.
  /// StreamRequestHandler links rfile to wfile this way when wbufsize > 0. The pipelined handler
  /// then reads `for (std::string req; !(req = rfile.readline()).empty();)
  /// wfile.write(answer(req));` and sends one write per batch of requests that arrived together. A
  /// read then also throws what `out`'s flush() throws.
  void flush_before_receive(SocketFile* out) noexcept { flush_first_ = out; }
  /// Idle mode (the servers turn it on; docs/adr/0006-timeout-defaults.md): a read call that
  /// finds nothing buffered waits up to `idle` (nullopt: no limit) for its first bytes, instead
  /// of the socket's timeout; from their arrival the rest of the call runs under the socket's
  /// timeout as usual. So a connection between requests may stay idle for `idle`, while a
  /// request that stalls half-way is cut after the (shorter) socket timeout.
  void set_idle_timeout(Timeout idle) noexcept { idle_ = idle; }

  /// The range lines() returns; its iterator calls readline() (see LineRange).
  class LineRange;
  /// Iteration over lines, until EOF: `for (const std::string& line : file.lines()) ...`.
  /// Each step throws what readline(max_len) throws.
  /// @python iterating over a file object (for line in rfile)
  LineRange lines(std::size_t max_len = default_max_line);

  // --- Writing -----------------------------------------------------------------------------------
  /// Sends `data` (unbuffered), or buffers it and sends when the buffer fills. Returns
  /// data.size(): a write is never partial.
  /// @throws std::logic_error after close() (with a write buffer).
  /// @throws ConnectionError, TimeoutError or SocketError, as Socket::sendall.
  /// @python io.BufferedWriter.write
  std::size_t write(std::string_view data);
  /// Sends what the write buffer holds. The buffer is emptied first: after a failure those
  /// bytes are gone (the connection is broken anyway).
  /// @throws ConnectionError, TimeoutError or SocketError, as Socket::sendall.
  /// @python io.BufferedWriter.flush
  void flush();
  /// Flushes and marks the file closed; the socket stays open (shutdown_request closes it). A
  /// second close() does nothing.
  /// @throws ConnectionError, TimeoutError or SocketError from the flush.
  /// @python io.BufferedWriter.close (which leaves the socket open too)
  void close();
  /// True after close().
  /// @python io.BufferedWriter.closed
  bool closed() const noexcept { return closed_; }

  /// The socket's descriptor.
  /// @python io.BufferedReader.fileno
  int fileno() const noexcept { return sock_->fileno(); }
  /// Bytes received from / sent to the socket through this file so far.
  /// @{
  std::uint64_t bytes_received() const noexcept { return bytes_received_; }
  std::uint64_t bytes_sent() const noexcept { return bytes_sent_; }
  /// @}
  /// The socket the file reads and writes.
  Socket& socket() noexcept { return *sock_; }

 private:
  // One recv() into the buffer; returns false at EOF.
  bool fill();
  // In idle mode with nothing buffered: waits (up to the idle timeout) for the first bytes and
  // buffers them, before the read call's own deadline starts.
  void await_input();
  // One recv() into `into` (under the read call's deadline, if any); 0 at EOF.
  std::size_t receive(std::span<char> into);
  std::size_t write_buffered(std::string_view data);  // write() when buffering or closed

  Socket* sock_;
  Buffer in_;
  std::string out_;
  std::size_t read_chunk_;
  std::size_t write_buffer_size_;
  bool eof_ = false;
  bool closed_ = false;
  std::uint64_t bytes_received_ = 0;
  // The deadline of the read call in progress (see "Timeouts" above).
  std::optional<std::chrono::steady_clock::time_point> call_deadline_;
  std::uint64_t bytes_sent_ = 0;
  SocketFile* flush_first_ = nullptr;  // flushed before each recv() (flush_before_receive)
  std::optional<Timeout> idle_;  // unset: no idle mode, every wait is under the socket's timeout
};

/// The lines of a SocketFile, read one by one as the loop advances (an input range: one pass).
class SocketFile::LineRange {
 public:
  /// An input iterator whose increment reads the next line; it equals end() once readline()
  /// returns "" (EOF).
  class iterator {
   public:
    /// The standard iterator types: an input iterator over std::string lines.
    /// @{
    using iterator_category = std::input_iterator_tag;
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string*;
    using reference = const std::string&;
    /// @}

    /// The end iterator.
    iterator() = default;
    /// An iterator at the first line of `range` (reads it).
    explicit iterator(LineRange* range) : range_(range) { ++*this; }
    /// The current line.
    /// @{
    reference operator*() const { return line_; }
    pointer operator->() const { return &line_; }
    /// @}
    /// Reads the next line. Throws what SocketFile::readline() throws.
    /// @{
    iterator& operator++() {
      line_ = range_->file_->readline(range_->max_len_);
      if (line_.empty()) range_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    /// @}
    /// True when both are at the end, or both iterate the same range.
    friend bool operator==(const iterator& a, const iterator& b) { return a.range_ == b.range_; }

   private:
    LineRange* range_ = nullptr;
    std::string line_;
  };

  /// The lines of `file`, each at most `max_len` bytes.
  LineRange(SocketFile& file, std::size_t max_len) : file_(&file), max_len_(max_len) {}
  /// Reads the first line.
  iterator begin() { return iterator(this); }
  /// The end (EOF).
  iterator end() { return {}; }

 private:
  SocketFile* file_;
  std::size_t max_len_;
};

inline SocketFile::LineRange SocketFile::lines(std::size_t max_len) {
  return LineRange(*this, max_len);
}

}  // namespace sockserv
