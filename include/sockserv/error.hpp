// SPDX-License-Identifier: MIT
// The error model of the sockets layer (docs/adr/0001-error-model.md).
//
// Every failure is a std::system_error. Its code is the errno of the failing call (generic
// category) or one of sockserv's own codes below; its message names the operation and, where
// there is one, the address ("connect 127.0.0.1:9999: Connection refused"). Three subclasses let a
// program catch what Python programs catch by type:
//
//   std::system_error
//    └─ SocketError           any socket failure      (Python: OSError)
//        ├─ TimeoutError      a settimeout() expired  (Python: TimeoutError / socket.timeout)
//        └─ ConnectionError   the peer went away (reset, broken pipe, closed mid-message) or
//                             refused the connection  (Python: ConnectionError and subclasses)
//
// Framing and buffered-reader errors (a line or frame over its limit, a malformed header) are
// SocketError with a sockserv::errc code, so one catch clause handles "this connection is bad".
#pragma once

#include <string>
#include <system_error>

namespace sockserv {

// sockserv's own error conditions, in sockserv::error_category().
enum class errc {
  connection_broken = 1,  // the peer closed before a whole message arrived (recv_exact, read_exact)
  line_too_long,          // readline() found no delimiter within its max_len
  frame_too_large,        // a frame header announced more than the codec's max_size
  malformed_frame,        // a frame header that cannot be parsed (bad digits, unknown type byte)
  datagram_truncated,     // a datagram was larger than the receive buffer (MSG_TRUNC)
  message_too_large,      // read to EOF found more than the limit
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

// The category of getaddrinfo()'s EAI_* codes (they are not errno values).
const std::error_category& gai_category() noexcept;

// A socket operation failed. what() is "OPERATION [ADDRESS]: reason".
class SocketError : public std::system_error {
 public:
  using std::system_error::system_error;
};

// A blocking call ran past the socket's timeout (code: std::errc::timed_out).
class TimeoutError : public SocketError {
 public:
  using SocketError::SocketError;
};

// The peer is gone: ECONNRESET, EPIPE, ECONNABORTED, or errc::connection_broken.
class ConnectionError : public SocketError {
 public:
  using SocketError::SocketError;
};

// True for the codes that mean "the peer went away" (they raise ConnectionError).
bool is_connection_lost(std::error_code ec) noexcept;

// Throws the subclass that fits `ec`, with the message "operation[ where]: reason".
[[noreturn]] void throw_error(std::error_code ec, std::string_view operation,
                              std::string_view where = {});

// throw_error() with the calling thread's errno.
[[noreturn]] void throw_errno(std::string_view operation, std::string_view where = {});

}  // namespace sockserv

template <>
struct std::is_error_code_enum<sockserv::errc> : std::true_type {};
