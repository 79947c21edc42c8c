// SPDX-License-Identifier: MIT
// SSLContext: TLS settings shared by many connections (Python's ssl.SSLContext, on OpenSSL 3).
//
//   auto ctx = sockserv::create_default_context(sockserv::Purpose::CLIENT_AUTH);  // a server's
//   ctx.load_cert_chain("cert.pem", "key.pem");
//   ctx.set_alpn_protocols({"h2", "http/1.1"});
//   server.set_ssl_context(std::make_shared<const SSLContext>(std::move(ctx)));
//
// Defaults are the safe ones, as create_default_context's in Python: TLS 1.2 or later, no
// compression, no renegotiation, a client verifies the server's chain and host name against the
// system's CAs, a server asks for no client certificate, TLS 1.3 session tickets on (2 per
// handshake), idle connections hold no record buffers, SSLKEYLOGFILE honoured.
//
// Thread safety and reload: a context is a handle to shared settings (copying it shares them).
// Configure it, then use it from any number of threads. Once a connection has used it, its
// settings are frozen (a setter then throws std::logic_error), because OpenSSL contexts must not
// change under live connections: to reload a certificate, build a new context and swap it in
// (TCPServer::set_ssl_context). Connections keep the context they started with.
//
// Errors: SSLError with OpenSSL's reason (a key that does not match its certificate, a file that
// is not PEM, a wrong password, ...). In a build without OpenSSL every constructor throws
// SSLError(ssl_errc::unavailable); tls_available() says which build this is.
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

// True when sockserv was built with OpenSSL.
bool tls_available() noexcept;

// What a context is for (Python's ssl.Purpose): SERVER_AUTH makes a client's context (it
// authenticates servers), CLIENT_AUTH a server's.
enum class Purpose { SERVER_AUTH, CLIENT_AUTH };

enum class TLSVersion { MINIMUM_SUPPORTED, TLSv1_2, TLSv1_3, MAXIMUM_SUPPORTED };

// Whether the peer must present a certificate (Python's ssl.CERT_*). On a server, CERT_OPTIONAL
// asks for one and verifies it when sent (an invalid one fails the handshake), CERT_REQUIRED
// also refuses a client that sends none.
enum class VerifyMode { CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED };

// One session ticket key in nginx's ssl_session_ticket_key layout: 16 bytes of name, 32 of
// HMAC-SHA256 secret, 32 of AES-256 key.
using TicketKey = std::array<std::uint8_t, 80>;

class SSLContext {
 public:
  enum class Protocol { TLS_SERVER, TLS_CLIENT };

  explicit SSLContext(Protocol protocol);
  SSLContext(const SSLContext&) = default;
  SSLContext(SSLContext&&) noexcept = default;
  SSLContext& operator=(const SSLContext&) = default;
  SSLContext& operator=(SSLContext&&) noexcept = default;
  ~SSLContext();

  bool server_side() const noexcept;

  // --- Certificates ----------------------------------------------------------------------------
  // The certificate chain (PEM: the leaf first) and its private key (PEM, PKCS#8 or traditional;
  // `keyfile` empty: in `certfile`). `password` decrypts an encrypted key.
  void load_cert_chain(const std::string& certfile, const std::string& keyfile = {},
                       const std::string& password = {});
  // CAs that verify the peer: a PEM file and/or a directory hashed with `openssl rehash`.
  void load_verify_locations(const std::string& cafile = {}, const std::string& capath = {});
  // The system's CAs (a client context from create_default_context has them).
  void load_default_certs();

  // --- Verification ----------------------------------------------------------------------------
  void set_verify_mode(VerifyMode mode);
  VerifyMode verify_mode() const noexcept;
  // A client checks that the server's certificate names server_hostname (needs a verify mode
  // other than CERT_NONE, as in Python).
  void set_check_hostname(bool on);
  bool check_hostname() const noexcept;

  // --- Protocol --------------------------------------------------------------------------------
  void set_minimum_version(TLSVersion version);
  TLSVersion minimum_version() const noexcept;
  void set_maximum_version(TLSVersion version);
  TLSVersion maximum_version() const noexcept;
  // TLS 1.2 cipher list (OpenSSL syntax) and TLS 1.3 suites.
  void set_ciphers(const std::string& ciphers);
  void set_ciphersuites(const std::string& suites);
  // ALPN, in preference order. A server picks the first of its own the client offers; when
  // none matches, the handshake goes on without ALPN (as OpenSSL's servers and nginx do).
  void set_alpn_protocols(const std::vector<std::string>& protocols);

  // --- Server name indication (servers) ---------------------------------------------------------
  // The context to use when a client asks for `server_name` (exact, or "*.example.com" for one
  // label). Unknown names get this context (the default certificate).
  void add_sni_context(const std::string& server_name, SSLContext context);
  // Called with the name a client asked for when no add_sni_context() entry matches (Python's
  // sni_callback): return the context to use, or nullptr for this one. An exception fails the
  // handshake with an alert.
  using SNICallback = std::function<std::shared_ptr<const SSLContext>(std::string_view name)>;
  void set_sni_callback(SNICallback callback);

  // --- Sessions --------------------------------------------------------------------------------
  // TLS 1.3 tickets a server sends after each full handshake (default 2; 0 turns resumption off).
  void set_num_tickets(std::size_t count);
  std::size_t num_tickets() const noexcept;
  // Ticket keys: the first encrypts new tickets, all decrypt (so rotating means putting a new key
  // first and keeping the old one for a while). Processes given the same keys resume each
  // other's sessions. Default: a random key per context, shared by forked children.
  void set_session_ticket_keys(const std::vector<TicketKey>& keys);
  // The same from a file of one or more 80-byte keys (nginx's format). Throws SSLError when the
  // file's size is not a multiple of 80.
  void load_session_ticket_keys(const std::string& path);

  // --- Operations ------------------------------------------------------------------------------
  // Appends the TLS secrets of every connection to `path` in NSS key log format (Wireshark).
  void set_keylog_filename(const std::string& path);
  // Kernel TLS (SSL_OP_ENABLE_KTLS): after the handshake the kernel encrypts and decrypts, when
  // it can (the `tls` module, a supported cipher). Where it cannot, the connection stays in user
  // space and the first such connection logs the fallback. Off by default, as in OpenSSL.
  void set_ktls(bool on);
  bool ktls() const noexcept;

  // The SSL_CTX*, for settings sockserv has no name for. Change nothing after first use.
  void* native_handle() const noexcept;

  // Python's SSLContext.wrap_socket: `sock` becomes an SSLSocket. With do_handshake_on_connect
  // the handshake runs at once (under sock's timeout); otherwise call do_handshake(), or the
  // first read or write does it. A client should give server_hostname (SNI, and the name its
  // certificate must carry with check_hostname); `session` resumes an earlier session.
  SSLSocket wrap_socket(Socket sock, bool server_side, const std::string& server_hostname = {},
                        bool do_handshake_on_connect = true,
                        const SSLSession* session = nullptr) const;

  struct Impl;
  const std::shared_ptr<Impl>& impl() const noexcept { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

// A server's current context: swapped whole from any thread (a reload), read once per
// connection, which keeps the context it got. One uncontended lock per read.
class SSLContextSlot {
 public:
  // Throws std::invalid_argument for a client context.
  void set(std::shared_ptr<const SSLContext> context);
  std::shared_ptr<const SSLContext> get() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const SSLContext> context_;
};

// Python's ssl.create_default_context: CLIENT_AUTH gives a server's context, SERVER_AUTH a
// client's (CERT_REQUIRED, check_hostname, the system's CAs, or `cafile` when given).
SSLContext create_default_context(Purpose purpose = Purpose::SERVER_AUTH,
                                  const std::string& cafile = {});

}  // namespace sockserv
