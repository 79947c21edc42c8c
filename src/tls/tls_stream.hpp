// SPDX-License-Identifier: MIT
// TlsStream: the TLS layer of a Socket (docs/adr/0003-transport-model.md). One OpenSSL SSL
// object reading and writing the socket's descriptor itself, so no bytes are staged in buffers
// of ours and kTLS stays possible. Every call is one attempt (StreamLayer's contract): it
// moves bytes or says which readiness it needs; Socket and the event loop do the waiting.
#pragma once

#include <sockserv/detail/stream_layer.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include "tls/context_impl.hpp"

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace sockserv::tls {

class TlsStream final : public detail::StreamLayer, public SSLObject {
 public:
  TlsStream(std::shared_ptr<SSLContext::Impl> context, int fd, bool server_side,
            const std::string& server_hostname, const SSLSession* session,
            std::string_view already_received = {});
  ~TlsStream() override;

  // The stream an SSL belongs to (for OpenSSL's callbacks), or nullptr.
  static TlsStream* of(const SSL* ssl) noexcept;
  // SNI switched the connection to `context`: keep it alive as long as the connection.
  void adopt_context(std::shared_ptr<SSLContext::Impl> context) noexcept {
    sni_context_ = std::move(context);
  }
  const SSLContext::Impl& base_context() const noexcept { return *context_; }
  // For the BIO: the descriptor, and bytes received before TLS started (read first).
  int fd() const noexcept { return fd_; }
  std::string* prefix() noexcept { return prefix_.get(); }
  void drop_prefix() noexcept { prefix_.reset(); }

  // One handshake attempt: 1 when done, -1 with `want` or `ec`.
  int handshake_some(short& want, std::error_code& ec) noexcept;
  // One attempt at a two-way TLS close (unwrap): 1 when both close_notify alerts have crossed.
  int unwrap_some(short& want, std::error_code& ec) noexcept;

  // StreamLayer
  ssize_t read_some(std::span<char> into, short& want, std::error_code& ec) noexcept override;
  ssize_t write_some(std::string_view data, short& want, std::error_code& ec) noexcept override;
  int close_some(short& want, std::error_code& ec) noexcept override;
  std::size_t pending() const noexcept override;
  std::string error_detail() const override;

  // SSLObject
  bool server_side() const noexcept override { return server_side_; }
  bool handshake_done() const noexcept override { return SSL_is_init_finished(ssl_) == 1; }
  std::string version() const override;
  std::optional<CipherInfo> cipher() const override;
  std::string selected_alpn_protocol() const override;
  std::string server_hostname() const override;
  std::optional<PeerCertificate> getpeercert() const override;
  SSLSession session() const override;
  bool session_reused() const noexcept override { return SSL_session_reused(ssl_) == 1; }
  bool close_notify_received() const noexcept override {
    return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0;
  }
  bool ktls_send() const noexcept override;
  bool ktls_recv() const noexcept override;
  void* native_handle() const noexcept override { return ssl_; }

 private:
  // Runs one OpenSSL call with an empty error queue, errno saved after it, SIGPIPE held off
  // with kTLS; returns its result.
  template <class Call>
  int call(Call ssl_call, int& saved_errno) noexcept;
  // Classifies a failed SSL call (`result` its return, `saved_errno` errno right after it).
  ssize_t fail(int result, int saved_errno, short& want, std::error_code& ec,
               bool reading) noexcept;

  std::shared_ptr<SSLContext::Impl> context_;
  std::shared_ptr<SSLContext::Impl> sni_context_;
  SSL* ssl_ = nullptr;
  std::unique_ptr<std::string> prefix_;  // rarely any: a pointer, not a string per connection
  int fd_ = -1;
  unsigned long last_error_ = 0;  // OpenSSL's code for the last failure (error_detail)
  bool server_side_ = false;
  bool guard_sigpipe_ = false;  // kTLS: OpenSSL's socket BIO writes with write(2)
};

// The BIO sockserv puts under an SSL when kTLS is off: recv/send on the descriptor, with
// MSG_NOSIGNAL (OpenSSL's socket BIO uses write(2): a peer gone would raise SIGPIPE).
BIO* new_socket_bio(TlsStream& stream);

}  // namespace sockserv::tls
