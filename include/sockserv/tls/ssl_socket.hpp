// SPDX-License-Identifier: MIT
/// @file
/// SSLSocket: a Socket whose bytes go through TLS (Python's ssl.SSLSocket), and SSLObject, what
/// a TLS connection negotiated.
///
/// ```
///   auto ctx = sockserv::create_default_context();              // a client's
///   auto tls = ctx.wrap_socket(sockserv::create_connection("example.org", 443),
///                              false, "example.org");          // handshake, verification
///   tls.sendall("GET / HTTP/1.0\r\n\r\n");
///   std::string reply = tls.recv(4096);
/// ```
///
/// An SSLSocket *is* a Socket: every byte call (send, sendall, recv, recv_into, recv_exact,
/// SocketFile over it, a server's Request) goes through TLS with the socket's timeout rules,
/// and moving it into a plain Socket keeps the TLS state (docs/adr/0003-transport-model.md).
/// So a handler that is given a Socket& reaches the TLS details with ssl_object(sock).
///
/// Ending: recv() returns 0 only when the peer closed TLS cleanly (close_notify); a connection
/// cut without it raises SSLEOFError (a truncation, never a silent EOF). shutdown(SHUT_WR) and
/// unwrap() send close_notify (Python's shutdown() does not). graceful_close(timeout) sends it
/// and waits at most `timeout` for the peer's.
///
/// Thread safety: unlike a plain Socket, one TLS connection may not be read by one thread while
/// another writes (OpenSSL's SSL object is one state machine). The context may be shared.
#pragma once

#include <sockserv/socket.hpp>
#include <sockserv/tls/ssl_context.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sockserv {

/// A verified peer certificate, in words.
/// @python ssl.SSLSocket.getpeercert
struct PeerCertificate {
  std::string subject;  ///< "CN=client,O=Example" (RFC 2253 order).
  std::string issuer;   ///< The issuer's name, in the same form.
  /// "DNS:example.org", "IP Address:127.0.0.1".
  std::vector<std::string> subject_alt_names;
  std::chrono::system_clock::time_point not_before;  ///< Valid from.
  std::chrono::system_clock::time_point not_after;   ///< Valid until.
  std::string serial_number;                         ///< Hexadecimal.
};

/// The negotiated cipher: Python's (name, protocol, secret bits) tuple.
/// @python ssl.SSLSocket.cipher
struct CipherInfo {
  std::string name;      ///< "TLS_AES_256_GCM_SHA384".
  std::string protocol;  ///< "TLSv1.3".
  int secret_bits = 0;   ///< The cipher's secret key bits.
};

/// A TLS session a client can resume on its next connection. A shared, immutable handle:
/// copies name the same session.
/// @threadsafety Safe from any thread.
/// @python ssl.SSLSession
class SSLSession {
 public:
  /// No session (false).
  SSLSession() = default;
  /// For the library: wraps an SSL_SESSION* whose deleter frees it.
  explicit SSLSession(std::shared_ptr<void> handle) noexcept : handle_(std::move(handle)) {}
  /// True when there is a session to resume.
  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }
  /// The SSL_SESSION*.
  void* native_handle() const noexcept { return handle_.get(); }

 private:
  std::shared_ptr<void> handle_;
};

/// What a TLS connection negotiated. Valid while its Socket lives; reached with ssl_object()
/// or SSLSocket::ssl().
/// @threadsafety As its socket: one thread at a time.
/// @python ssl.SSLObject
class SSLObject {
 public:
  SSLObject() = default;
  SSLObject(const SSLObject&) = delete;
  SSLObject& operator=(const SSLObject&) = delete;
  virtual ~SSLObject() = default;

  /// True on the server's end.
  /// @python ssl.SSLObject.server_side
  virtual bool server_side() const noexcept = 0;
  /// True once the handshake has completed.
  virtual bool handshake_done() const noexcept = 0;
  /// "TLSv1.3", "TLSv1.2"; empty before the handshake.
  /// @python ssl.SSLObject.version
  virtual std::string version() const = 0;
  /// The cipher in use; nullopt before the handshake.
  /// @python ssl.SSLObject.cipher
  virtual std::optional<CipherInfo> cipher() const = 0;
  /// The ALPN protocol agreed on, or empty.
  /// @python ssl.SSLObject.selected_alpn_protocol
  virtual std::string selected_alpn_protocol() const = 0;
  /// A client: the name it asked for. A server: the name the client asked for (SNI), or empty.
  /// @python ssl.SSLObject.server_hostname
  virtual std::string server_hostname() const = 0;
  /// The peer's certificate, only when it was verified (a server: with CERT_OPTIONAL or
  /// CERT_REQUIRED); nullopt otherwise.
  /// @python ssl.SSLObject.getpeercert
  virtual std::optional<PeerCertificate> getpeercert() const = 0;
  /// The session, to resume on a later connection (a client's).
  /// @python ssl.SSLObject.session
  virtual SSLSession session() const = 0;
  /// True when the handshake resumed an earlier session.
  /// @python ssl.SSLObject.session_reused
  virtual bool session_reused() const noexcept = 0;
  /// Decrypted bytes waiting to be read.
  /// @python ssl.SSLObject.pending
  virtual std::size_t pending() const noexcept = 0;
  /// True once the peer's close_notify arrived (its recv() returned 0).
  virtual bool close_notify_received() const noexcept = 0;
  /// Kernel TLS in effect for sending / receiving.
  /// @{
  virtual bool ktls_send() const noexcept = 0;
  virtual bool ktls_recv() const noexcept = 0;
  /// @}
  /// The SSL*.
  virtual void* native_handle() const noexcept = 0;
};

/// The TLS state of `sock`, or nullptr for a plain socket.
SSLObject* ssl_object(const Socket& sock) noexcept;

/// A Socket whose bytes go through TLS, made by SSLContext::wrap_socket(). Every Socket call
/// works on it; the TLS queries are SSLObject's.
/// @threadsafety One thread at a time, reads and writes included (the file says why).
/// @python ssl.SSLSocket
class SSLSocket : public Socket {
 public:
  /// No socket.
  SSLSocket() = default;
  /// Used by SSLContext::wrap_socket: `sock` with its TLS layer attached.
  explicit SSLSocket(Socket sock) noexcept : Socket(std::move(sock)) {}

  /// Runs the handshake (client or server) within the socket's timeout as a whole.
  /// @throws SSLCertVerificationError when the peer's certificate does not verify.
  /// @throws SSLEOFError when the peer cut the connection during the handshake.
  /// @throws SSLError for any other TLS failure.
  /// @throws TimeoutError when the socket's timeout expires first.
  /// @throws ConnectionError when the peer reset the connection.
  /// @throws std::invalid_argument when the socket has no TLS layer.
  /// @python ssl.SSLSocket.do_handshake
  void do_handshake();
  /// Sends close_notify and waits (within the timeout) for the peer's, then returns the plain
  /// socket, for a protocol that goes on in clear text (STARTTLS's reverse).
  /// @throws SSLError, TimeoutError, ConnectionError as do_handshake().
  /// @throws std::invalid_argument when the socket has no TLS layer.
  /// @python ssl.SSLSocket.unwrap
  Socket unwrap();

  /// The TLS state. The socket must carry a TLS layer (an SSLSocket from wrap_socket does).
  SSLObject& ssl() const noexcept { return *ssl_object(*this); }
  /// Shorthands for the same queries of ssl() (SSLObject says what each returns).
  /// @{
  std::string version() const { return ssl().version(); }
  std::optional<CipherInfo> cipher() const { return ssl().cipher(); }
  std::string selected_alpn_protocol() const { return ssl().selected_alpn_protocol(); }
  std::string server_hostname() const { return ssl().server_hostname(); }
  std::optional<PeerCertificate> getpeercert() const { return ssl().getpeercert(); }
  SSLSession session() const { return ssl().session(); }
  bool session_reused() const noexcept { return ssl().session_reused(); }
  std::size_t pending() const noexcept { return ssl().pending(); }
  /// @}
};

/// Runs the TLS handshake on a socket that carries a TLS layer (a server's Request, after
/// wrap_socket(..., do_handshake_on_connect = false)). The same as SSLSocket::do_handshake().
/// @throws SSLError and the others of SSLSocket::do_handshake().
void do_handshake(Socket& sock);

/// Attaches a TLS layer to `sock` in place (no handshake yet): what a server does in the
/// request's own thread, so a Socket& handed to a handler becomes a TLS socket.
/// `already_received`: bytes of the TLS stream read from the socket before (an event-loop
/// server reads past a PROXY header): TLS reads them first.
/// @throws std::invalid_argument when `sock` is closed or already has a layer, or when
///         `server_side` is not the context's side.
/// @throws SSLError when OpenSSL cannot make the connection's state (ssl_errc::unavailable in
///         a build without OpenSSL).
void attach_tls(Socket& sock, const SSLContext& context, bool server_side,
                const std::string& server_hostname = {}, const SSLSession* session = nullptr,
                std::string_view already_received = {});

namespace detail {
// One handshake attempt on a socket with a TLS layer (the event loop's do_handshake): 1 when
// done, -1 with `want` (POLLIN/POLLOUT) or `ec`.
int tls_handshake_some(Socket& sock, short& want, std::error_code& ec) noexcept;
}  // namespace detail

}  // namespace sockserv
