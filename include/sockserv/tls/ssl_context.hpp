// SPDX-License-Identifier: MIT
/// @file
/// SSLContext: TLS settings shared by many connections (Python's ssl.SSLContext, on OpenSSL 3).
///
/// ```
///   auto ctx = sockserv::create_default_context(sockserv::Purpose::CLIENT_AUTH);  // a server's
///   ctx.load_cert_chain("cert.pem", "key.pem");
///   ctx.set_alpn_protocols({"h2", "http/1.1"});
///   server.set_ssl_context(std::make_shared<const SSLContext>(std::move(ctx)));
/// ```
///
/// Defaults are the safe ones, as create_default_context's in Python: TLS 1.2 or later, no
/// compression, no renegotiation, a client verifies the server's chain and host name against the
/// system's CAs, a server asks for no client certificate, TLS 1.3 session tickets on (2 per
/// handshake), idle connections hold no record buffers, SSLKEYLOGFILE honoured.
///
/// Thread safety and reload: a context is a handle to shared settings (copying it shares them).
/// Configure it, then use it from any number of threads. Once a connection has used it, its
/// settings are frozen (a setter then throws std::logic_error), because OpenSSL contexts must not
/// change under live connections: to reload a certificate, build a new context and swap it in
/// (TCPServer::set_ssl_context). Connections keep the context they started with.
///
/// Errors: SSLError with OpenSSL's reason (a key that does not match its certificate, a file that
/// is not PEM, a wrong password, ...). In a build without OpenSSL every constructor throws
/// SSLError(ssl_errc::unavailable); tls_available() says which build this is.
#pragma once

#include <sockserv/socket.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sockserv {

class SSLSocket;
class SSLSession;

/// True when sockserv was built with OpenSSL (else every SSLContext constructor throws
/// SSLError with ssl_errc::unavailable).
bool tls_available() noexcept;

/// What a context is for: SERVER_AUTH makes a client's context (it authenticates servers),
/// CLIENT_AUTH a server's.
/// @python ssl.Purpose
enum class Purpose {
  SERVER_AUTH,  ///< A client's context: it authenticates servers.
  CLIENT_AUTH   ///< A server's context: it (optionally) authenticates clients.
};

/// A bound on the TLS versions negotiated; nothing below TLS 1.2 ever is.
/// @python ssl.TLSVersion
enum class TLSVersion {
  MINIMUM_SUPPORTED,  ///< The lowest the library allows: TLS 1.2.
  TLSv1_2,            ///< TLS 1.2.
  TLSv1_3,            ///< TLS 1.3.
  MAXIMUM_SUPPORTED   ///< The highest OpenSSL supports.
};

/// Whether the peer must present a certificate. On a server, CERT_OPTIONAL asks for one and
/// verifies it when sent (an invalid one fails the handshake), CERT_REQUIRED also refuses a
/// client that sends none.
/// @python ssl.VerifyMode (ssl.CERT_NONE, ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED)
enum class VerifyMode {
  CERT_NONE,      ///< No verification (a server asks for no certificate).
  CERT_OPTIONAL,  ///< A server asks for a certificate and verifies it if one is sent.
  CERT_REQUIRED   ///< The peer must send a certificate that verifies.
};

/// One session ticket key in nginx's ssl_session_ticket_key layout: 16 bytes of name, 32 of
/// HMAC-SHA256 secret, 32 of AES-256 key.
using TicketKey = std::array<std::uint8_t, 80>;

/// TLS settings shared by many connections: certificates, verification, versions, ALPN, SNI,
/// session tickets. A handle: copies share the settings.
///
/// Every setter throws std::logic_error once a connection has used the context (its settings
/// are frozen: build a new context to reload), and SSLError when OpenSSL refuses a value.
/// @threadsafety Configure it from one thread, then use it from any number of threads.
/// @python ssl.SSLContext
class SSLContext {
 public:
  /// Which side the context serves.
  /// @python ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS_CLIENT
  enum class Protocol {
    TLS_SERVER,  ///< A server's context.
    TLS_CLIENT   ///< A client's context.
  };

  /// A context with TLS 1.2 or later, no compression, no renegotiation, no certificates and no
  /// verification (CERT_NONE, unlike Python's PROTOCOL_TLS_CLIENT): a client context that
  /// verifies comes from create_default_context().
  /// @throws SSLError when OpenSSL cannot make one (ssl_errc::unavailable without OpenSSL).
  /// @python ssl.SSLContext
  explicit SSLContext(Protocol protocol);
  /// Shares the settings (a second handle, not a deep copy).
  SSLContext(const SSLContext&) = default;
  /// Takes over the handle; the moved-from context may then only be assigned to or destroyed.
  SSLContext(SSLContext&&) noexcept = default;
  /// Shares the settings (a second handle, not a deep copy).
  SSLContext& operator=(const SSLContext&) = default;
  /// Takes over the handle; the moved-from context may then only be assigned to or destroyed.
  SSLContext& operator=(SSLContext&&) noexcept = default;
  ~SSLContext();

  /// True for a TLS_SERVER context.
  bool server_side() const noexcept;

  // --- Certificates ----------------------------------------------------------------------------
  /// The certificate chain (PEM: the leaf first) and its private key (PEM, PKCS#8 or traditional;
  /// `keyfile` empty: in `certfile`). `password` decrypts an encrypted key.
  /// @throws SSLError for an unreadable file, a wrong password, or a key that does not match.
  /// @python ssl.SSLContext.load_cert_chain
  void load_cert_chain(const std::string& certfile, const std::string& keyfile = {},
                       const std::string& password = {});
  /// CAs that verify the peer: a PEM file and/or a directory hashed with `openssl rehash`.
  /// @throws SSLError when OpenSSL cannot load them.
  /// @python ssl.SSLContext.load_verify_locations
  void load_verify_locations(const std::string& cafile = {}, const std::string& capath = {});
  /// The system's CAs (a client context from create_default_context has them).
  /// @throws SSLError when OpenSSL cannot load them.
  /// @python ssl.SSLContext.load_default_certs
  void load_default_certs();

  // --- Verification ----------------------------------------------------------------------------
  /// Sets whether the peer must present a certificate.
  /// @throws std::invalid_argument for CERT_NONE while check_hostname() is on, as in Python.
  /// @python ssl.SSLContext.verify_mode
  void set_verify_mode(VerifyMode mode);
  /// The verify mode: CERT_NONE unless set (create_default_context() sets CERT_REQUIRED on a
  /// client's).
  /// @python ssl.SSLContext.verify_mode
  VerifyMode verify_mode() const noexcept;
  /// A client checks that the server's certificate names server_hostname. Turning it on with
  /// CERT_NONE sets CERT_REQUIRED, as in Python.
  /// @python ssl.SSLContext.check_hostname
  void set_check_hostname(bool on);
  /// Whether a client checks the server's host name.
  /// @python ssl.SSLContext.check_hostname
  bool check_hostname() const noexcept;

  // --- Protocol --------------------------------------------------------------------------------
  /// The lowest version negotiated (default TLSv1_2).
  /// @python ssl.SSLContext.minimum_version
  /// @{
  void set_minimum_version(TLSVersion version);
  TLSVersion minimum_version() const noexcept;
  /// @}
  /// The highest version negotiated (default MAXIMUM_SUPPORTED).
  /// @python ssl.SSLContext.maximum_version
  /// @{
  void set_maximum_version(TLSVersion version);
  TLSVersion maximum_version() const noexcept;
  /// @}
  /// The TLS 1.2 cipher list, in OpenSSL syntax.
  /// @throws SSLError when it selects no cipher.
  /// @python ssl.SSLContext.set_ciphers
  void set_ciphers(const std::string& ciphers);
  /// The TLS 1.3 cipher suites, in OpenSSL syntax.
  /// @throws SSLError when OpenSSL refuses them.
  void set_ciphersuites(const std::string& suites);
  /// ALPN, in preference order. A server picks the first of its own the client offers; when
  /// none matches, the handshake goes on without ALPN (as OpenSSL's servers and nginx do).
  /// @throws std::invalid_argument for a name that is empty or longer than 255 bytes.
  /// @python ssl.SSLContext.set_alpn_protocols
  void set_alpn_protocols(const std::vector<std::string>& protocols);

  // --- Server name indication (servers) ---------------------------------------------------------
  /// The context to use when a client asks for `server_name` (exact, or "*.example.com" for one
  /// label). Unknown names get this context (the default certificate).
  /// @throws std::invalid_argument unless both contexts are server contexts.
  void add_sni_context(const std::string& server_name, SSLContext context);
  /// Called with the name a client asked for when no add_sni_context() entry matches: return
  /// the context to use, or nullptr for this one. An exception fails the handshake with an
  /// alert.
  using SNICallback = std::function<std::shared_ptr<const SSLContext>(std::string_view name)>;
  /// Sets the SNICallback; an empty function removes it.
  /// @python ssl.SSLContext.sni_callback
  void set_sni_callback(SNICallback callback);

  // --- Sessions --------------------------------------------------------------------------------
  /// TLS 1.3 tickets a server sends after each full handshake (default 2; 0 turns resumption
  /// off).
  /// @python ssl.SSLContext.num_tickets
  /// @{
  void set_num_tickets(std::size_t count);
  std::size_t num_tickets() const noexcept;
  /// @}
  /// Ticket keys: the first encrypts new tickets, all decrypt (so rotating means putting a new key
  /// first and keeping the old one for a while). Processes given the same keys resume each
  /// other's sessions. Default: a random key per context, shared by forked children.
  /// @throws std::invalid_argument for a client context.
  void set_session_ticket_keys(const std::vector<TicketKey>& keys);
  /// The same from a file of one or more 80-byte keys (nginx's format).
  /// @throws SocketError when the file cannot be opened.
  /// @throws SSLError when it is empty or its size is not a multiple of 80.
  /// @throws std::invalid_argument for a client context.
  void load_session_ticket_keys(const std::string& path);

  // --- Operations ------------------------------------------------------------------------------
  /// Appends the TLS secrets of every connection to `path` in NSS key log format (Wireshark).
  /// @throws SocketError when the file cannot be opened.
  /// @python ssl.SSLContext.keylog_filename
  void set_keylog_filename(const std::string& path);
  /// Kernel TLS (SSL_OP_ENABLE_KTLS): after the handshake the kernel encrypts and decrypts, when
  /// it can (the `tls` module, a supported cipher). Where it cannot, the connection stays in user
  /// space and the first such connection logs the fallback. Off by default, as in OpenSSL.
  /// @{
  void set_ktls(bool on);
  bool ktls() const noexcept;
  /// @}

  /// The SSL_CTX*, for settings sockserv has no name for. Change nothing after first use.
  void* native_handle() const noexcept;

  /// `sock` becomes an SSLSocket. With do_handshake_on_connect the handshake runs at once
  /// (under sock's timeout); otherwise call do_handshake(), or the first read or write does it.
  /// A client should give server_hostname (SNI, and the name its certificate must carry with
  /// check_hostname); `session` resumes an earlier session.
  /// @throws std::invalid_argument as attach_tls().
  /// @throws SSLError and the others of SSLSocket::do_handshake() when the handshake fails.
  /// @python ssl.SSLContext.wrap_socket
  SSLSocket wrap_socket(Socket sock, bool server_side, const std::string& server_hostname = {},
                        bool do_handshake_on_connect = true,
                        const SSLSession* session = nullptr) const;

  /// For the library: the shared state behind the handle (defined in src/tls).
  struct Impl;
  /// For the library: the shared state behind the handle.
  const std::shared_ptr<Impl>& impl() const noexcept { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

/// A server's current context: swapped whole from any thread (a reload), read once per
/// connection, which keeps the context it got. One uncontended lock per read.
/// @threadsafety Safe from any thread.
class SSLContextSlot {
 public:
  /// Replaces the context (nullptr: no TLS).
  /// @throws std::invalid_argument for a client context.
  void set(std::shared_ptr<const SSLContext> context);
  /// The current context, or nullptr.
  std::shared_ptr<const SSLContext> get() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const SSLContext> context_;
};

/// A context with the safe defaults: CLIENT_AUTH gives a server's context, SERVER_AUTH a
/// client's (CERT_REQUIRED, check_hostname, the system's CAs, or `cafile` when given). As in
/// Python, the SSLKEYLOGFILE environment variable names a key log.
/// @throws SSLError as SSLContext's constructor and the loaders it calls.
/// @throws SocketError when SSLKEYLOGFILE names a file that cannot be opened.
/// @python ssl.create_default_context
SSLContext create_default_context(Purpose purpose = Purpose::SERVER_AUTH,
                                  const std::string& cafile = {});

}  // namespace sockserv
