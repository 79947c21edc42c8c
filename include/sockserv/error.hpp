// SPDX-License-Identifier: MIT
/// @file
/// The error model of the sockets layer (docs/adr/0001-error-model.md).
///
/// Every failure is a std::system_error. Its code is the errno of the failing call (generic
/// category) or one of sockserv's own codes below; its message names the operation and, where
/// there is one, the address ("connect 127.0.0.1:9999: Connection refused"). Three subclasses let
/// a program catch what Python programs catch by type:
///
/// ```
///   std::system_error
///    └─ SocketError           any socket failure      (Python: OSError)
///        ├─ TimeoutError      a settimeout() expired  (Python: TimeoutError / socket.timeout)
///        ├─ ConnectionError   the peer went away (reset, broken pipe, closed mid-message) or
///        │                    refused the connection  (Python: ConnectionError and subclasses)
///        └─ SSLError          TLS failed; what() carries OpenSSL's reason (Python: ssl.SSLError)
///            ├─ SSLZeroReturnError        the peer closed TLS cleanly (close_notify)
///            ├─ SSLEOFError               the stream was cut without close_notify: truncation
///            └─ SSLCertVerificationError  a certificate failed verification
/// ```
///
/// Framing and buffered-reader errors (a line or frame over its limit, a malformed header) are
/// SocketError with a sockserv::errc code, so one catch clause handles "this connection is bad".
#pragma once

#include <string>
#include <system_error>

namespace sockserv {

/// sockserv's own error conditions, in sockserv::error_category(). They reach the caller as the
/// code of a SocketError (ConnectionError for connection_broken).
enum class errc {
  connection_broken = 1,  ///< the peer closed before a whole message came (recv_exact, read_exact)
  line_too_long,          ///< readline() found no delimiter within its max_len
  frame_too_large,        ///< a frame header announced more than the codec's max_size
  malformed_frame,        ///< a frame header that cannot be parsed (bad digits, unknown type byte)
  datagram_truncated,     ///< a datagram was larger than the receive buffer (MSG_TRUNC)
  message_too_large,      ///< read to EOF found more than the limit
  control_truncated,      ///< recv_fds: the descriptors did not fit (MSG_CTRUNC); none is kept
};

/// The category of sockserv::errc codes (name "sockserv"). A function-local static: safe from
/// any thread.
const std::error_category& error_category() noexcept;

/// TLS conditions, in sockserv::ssl_category() (tls/ssl_socket.hpp; defined even in a build
/// without OpenSSL, so code that catches them compiles everywhere).
enum class ssl_errc {
  ssl_error = 1,      ///< a protocol or library failure (bad record, alert, handshake failure)
  zero_return,        ///< the peer sent close_notify: a clean end of the TLS stream
  unexpected_eof,     ///< the TCP stream ended without close_notify (a truncation)
  cert_verification,  ///< the peer's certificate did not verify (or names another host)
  unavailable,        ///< sockserv was built without OpenSSL
};

/// The category of sockserv::ssl_errc codes. Safe from any thread.
const std::error_category& ssl_category() noexcept;

/// Makes a sockserv code a std::error_code, so `ec == errc::line_too_long` compiles.
/// @{
inline std::error_code make_error_code(ssl_errc e) noexcept {
  return {static_cast<int>(e), ssl_category()};
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}
/// @}

/// The category of getaddrinfo()'s EAI_* codes (they are not errno values); its message() is
/// gai_strerror's. Safe from any thread.
/// @python socket.gaierror
const std::error_category& gai_category() noexcept;

/// A socket operation failed. what() is "OPERATION [ADDRESS]: reason"; code() is the errno
/// (generic category), an EAI_* code (gai_category()) or a sockserv::errc.
/// @python OSError
class SocketError : public std::system_error {
 public:
  using std::system_error::system_error;
};

/// A blocking call ran past the socket's timeout or deadline (code: std::errc::timed_out).
/// @python TimeoutError (socket.timeout)
class TimeoutError : public SocketError {
 public:
  using SocketError::SocketError;
};

/// The peer is gone (the codes is_connection_lost() accepts) or refused the connection
/// (ECONNREFUSED).
/// @python ConnectionError and its subclasses
class ConnectionError : public SocketError {
 public:
  using SocketError::SocketError;
};

/// TLS failed (code in ssl_category()). The subclasses below narrow it as Python's do.
/// @python ssl.SSLError
class SSLError : public SocketError {
 public:
  using SocketError::SocketError;
};

/// The peer closed the TLS stream cleanly (close_notify). A read reports this as EOF (0 bytes);
/// a write after it, or unwrap(), raises it.
/// @python ssl.SSLZeroReturnError
class SSLZeroReturnError : public SSLError {
 public:
  using SSLError::SSLError;
};

/// The connection ended without close_notify: what arrived may be cut short (a truncation
/// attack looks exactly like this). Never reported as a plain EOF.
/// @python ssl.SSLEOFError
class SSLEOFError : public SSLError {
 public:
  using SSLError::SSLError;
};

/// The peer's certificate chain did not verify, or does not name the expected host.
/// @python ssl.SSLCertVerificationError
class SSLCertVerificationError : public SSLError {
 public:
  using SSLError::SSLError;
};

/// True for the codes that mean "the peer went away": ECONNRESET, EPIPE, ECONNABORTED, ENOTCONN
/// (generic or system category) and errc::connection_broken. throw_error() raises
/// ConnectionError for them.
bool is_connection_lost(std::error_code ec) noexcept;

/// Throws the subclass that fits `ec`, with the message "operation[ where]: reason": the
/// public way for code built on sockserv to raise errors its callers can catch the same way.
/// @throws SocketError always: the subclass that fits (TimeoutError, ConnectionError, an SSLError).
[[noreturn]] void throw_error(std::error_code ec, std::string_view operation,
                              std::string_view where = {});

/// throw_error() with the calling thread's errno.
/// @throws SocketError always, or the subclass that fits errno.
[[noreturn]] void throw_errno(std::string_view operation, std::string_view where = {});

}  // namespace sockserv

/// @cond
// errc and ssl_errc convert to std::error_code implicitly.
template <>
struct std::is_error_code_enum<sockserv::errc> : std::true_type {};
template <>
struct std::is_error_code_enum<sockserv::ssl_errc> : std::true_type {};
/// @endcond
