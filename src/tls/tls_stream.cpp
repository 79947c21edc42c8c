// SPDX-License-Identifier: MIT
#include "tls/tls_stream.hpp"

#include <sockserv/error.hpp>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace sockserv::tls {
namespace {

bool is_ip_literal(const std::string& host) {
  in6_addr address{};
  return ::inet_pton(AF_INET, host.c_str(), &address) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &address) == 1;
}

// kTLS only: OpenSSL's socket BIO writes with write(2). SIGPIPE is blocked in this thread for
// the call and a SIGPIPE it raised is taken back, so the process's disposition is untouched.
class SigpipeGuard {
 public:
  explicit SigpipeGuard(bool active) noexcept : active_(active) {
    if (!active_) return;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  ~SigpipeGuard() {
    if (!active_) return;
    const int saved = errno;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    if (!was_pending_) {
      const timespec zero{};
      while (sigtimedwait(&pipe, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved;
  }

 private:
  bool active_;
  bool was_pending_ = false;
  sigset_t old_{};
};

}  // namespace

TlsStream::TlsStream(std::shared_ptr<SSLContext::Impl> context, int fd, bool server_side,
                     const std::string& server_hostname, const SSLSession* session,
                     std::string_view already_received)
    : context_(std::move(context)), fd_(fd), server_side_(server_side) {
  if (!already_received.empty()) prefix_ = std::make_unique<std::string>(already_received);
  if (context_->server != server_side) {
    throw std::invalid_argument(server_side ? "wrap_socket: server_side needs a server context"
                                            : "wrap_socket: a client needs a client context");
  }
  context_->frozen.store(true, std::memory_order_release);
  for (const auto& [name, sni] : context_->sni) sni->impl()->frozen.store(true);
  ssl_ = SSL_new(context_->ctx);
  if (ssl_ == nullptr) throw_openssl("SSL_new");
  SSL_set_app_data(ssl_, this);
  if (context_->ktls && !prefix_) {
    SSL_set_fd(ssl_, fd);  // kTLS needs OpenSSL's own socket BIO
    guard_sigpipe_ = true;
  } else {
    BIO* bio = new_socket_bio(*this);
    if (bio == nullptr) {
      SSL_free(ssl_);
      throw_openssl("BIO_new");
    }
    SSL_set_bio(ssl_, bio, bio);
  }
  if (server_side) {
    SSL_set_accept_state(ssl_);
    // Read-ahead: one recv() takes every record waiting instead of a header, then a body (2.7
    // -> ~1.9 recv per ping-pong message, one per bulk record; docs/BENCHMARKS.md). Safe because
    // bytes OpenSSL holds count as readable (pending()). Not for clients: unwrap() must not
    // swallow the clear text that follows the peer's close_notify.
    SSL_set_read_ahead(ssl_, 1);
    return;
  }
  SSL_set_connect_state(ssl_);
  bool ok = true;
  if (!server_hostname.empty()) {
    if (!is_ip_literal(server_hostname)) {
      // SSL_set_tlsext_host_name() without its macro's C cast.
      ok = SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                    const_cast<char*>(server_hostname.c_str())) == 1;
    }
    if (ok && context_->check_hostname) {
      ok = is_ip_literal(server_hostname)
               ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_hostname.c_str()) == 1
               : SSL_set1_host(ssl_, server_hostname.c_str()) == 1;
    }
  } else if (context_->check_hostname) {
    SSL_free(ssl_);
    throw std::invalid_argument("wrap_socket: check_hostname needs a server_hostname");
  }
  if (ok && session != nullptr && *session) {
    ok = SSL_set_session(ssl_, static_cast<SSL_SESSION*>(session->native_handle())) == 1;
  }
  if (!ok) {
    SSL_free(ssl_);
    throw_openssl("wrap_socket", server_hostname);
  }
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

TlsStream* TlsStream::of(const SSL* ssl) noexcept {
  return static_cast<TlsStream*>(SSL_get_app_data(ssl));
}

ssize_t TlsStream::fail(int result, int saved_errno, short& want, std::error_code& ec,
                        bool reading) noexcept {
  switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_WANT_READ:
      want = POLLIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      want = POLLOUT;
      return -1;
    case SSL_ERROR_ZERO_RETURN:  // close_notify: a read's clean EOF
      if (reading) return 0;
      ec = ssl_errc::zero_return;
      return -1;
    case SSL_ERROR_SYSCALL:
      last_error_ = ERR_peek_last_error();
      ERR_clear_error();
      ec = saved_errno != 0 ? std::error_code(saved_errno, std::generic_category())
                            : make_error_code(ssl_errc::unexpected_eof);
      return -1;
    default: {
      last_error_ = ERR_peek_last_error();
      ERR_clear_error();
      const int reason = ERR_GET_REASON(last_error_);
      if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ec = ssl_errc::unexpected_eof;
      } else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        ec = ssl_errc::cert_verification;
      } else {
        ec = ssl_errc::ssl_error;
      }
      return -1;
    }
  }
}

template <class Call>
int TlsStream::call(Call ssl_call, int& saved_errno) noexcept {
  // The error queue is per thread and must be empty when a call starts (a stale entry would
  // misclassify this call's failure); errno is read right after it (SSL_ERROR_SYSCALL needs it).
  // Any call may write (a read answers a KeyUpdate), so with kTLS each one holds SIGPIPE off.
  ERR_clear_error();
  errno = 0;
  const SigpipeGuard guard(guard_sigpipe_);
  const int result = ssl_call();
  saved_errno = errno;
  return result;
}

int TlsStream::handshake_some(short& want, std::error_code& ec) noexcept {
  int saved = 0;
  const int result = call([&] { return SSL_do_handshake(ssl_); }, saved);
  if (result == 1) {
    if (context_->ktls && (!ktls_send() || !ktls_recv())) {
      context_->note_ktls_fallback(ktls_send(), ktls_recv());
    }
    return 1;
  }
  return static_cast<int>(fail(result, saved, want, ec, false));
}

ssize_t TlsStream::read_some(std::span<char> into, short& want, std::error_code& ec) noexcept {
  if (into.empty()) return 0;
  std::size_t got = 0;
  int saved = 0;
  const int result = call([&] { return SSL_read_ex(ssl_, into.data(), into.size(), &got); }, saved);
  if (result == 1) return static_cast<ssize_t>(got);
  return fail(result, saved, want, ec, true);
}

ssize_t TlsStream::write_some(std::string_view data, short& want, std::error_code& ec) noexcept {
  if (data.empty()) return 0;
  std::size_t put = 0;
  int saved = 0;
  const int result =
      call([&] { return SSL_write_ex(ssl_, data.data(), data.size(), &put); }, saved);
  if (result == 1) return static_cast<ssize_t>(put);
  return fail(result, saved, want, ec, false);
}

int TlsStream::close_some(short& want, std::error_code& ec) noexcept {
  // Nothing to end before the handshake finished, or after a fatal error (OpenSSL then refuses
  // to write, and the peer would not trust what we sent anyway).
  if (!handshake_done() || (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0) return 1;
  int saved = 0;
  const int result = call([&] { return SSL_shutdown(ssl_); }, saved);  // 0: ours is out
  if (result >= 0) return 1;
  return static_cast<int>(fail(result, saved, want, ec, false));
}

int TlsStream::unwrap_some(short& want, std::error_code& ec) noexcept {
  if (!handshake_done()) return 1;
  int saved = 0;
  const int result = call(
      [&] {
        const int sent = SSL_shutdown(ssl_);  // 0: ours is out; again: read the peer's
        return sent == 0 ? SSL_shutdown(ssl_) : sent;
      },
      saved);
  if (result == 1) return 1;
  if (result == 0) {
    want = POLLIN;
    return -1;
  }
  return static_cast<int>(fail(result, saved, want, ec, false));
}

std::size_t TlsStream::pending() const noexcept {
  const int decrypted = SSL_pending(ssl_);
  if (decrypted > 0) return static_cast<std::size_t>(decrypted);
  return SSL_has_pending(ssl_) == 1 ? 1 : 0;  // a record read but not yet decrypted
}

std::string TlsStream::error_detail() const {
  std::string text = last_error_ != 0 ? openssl_reason(last_error_) : "";
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    text += (text.empty() ? "" : "; ") + std::string(X509_verify_cert_error_string(verify));
  }
  return text.empty() ? "no further detail from OpenSSL" : text;
}

std::string TlsStream::version() const { return handshake_done() ? SSL_get_version(ssl_) : ""; }

std::optional<CipherInfo> TlsStream::cipher() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  if (c == nullptr) return std::nullopt;
  return CipherInfo{SSL_CIPHER_get_name(c), SSL_CIPHER_get_version(c),
                    SSL_CIPHER_get_bits(c, nullptr)};
}

std::string TlsStream::selected_alpn_protocol() const {
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(ssl_, &data, &size);
  return data == nullptr ? "" : std::string(reinterpret_cast<const char*>(data), size);
}

std::string TlsStream::server_hostname() const {
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name == nullptr ? "" : name;
}

SSLSession TlsStream::session() const {
  // A copy: the connection's own session becomes unresumable when the connection ends without
  // close_notify (OpenSSL marks it so at SSL_free), and a saved session must outlive that.
  SSL_SESSION* own = SSL_get0_session(ssl_);
  SSL_SESSION* s = own != nullptr ? SSL_SESSION_dup(own) : nullptr;
  if (s == nullptr) return {};
  return SSLSession(
      std::shared_ptr<void>(s, [](void* p) { SSL_SESSION_free(static_cast<SSL_SESSION*>(p)); }));
}

bool TlsStream::ktls_send() const noexcept { return BIO_get_ktls_send(SSL_get_wbio(ssl_)) == 1; }

bool TlsStream::ktls_recv() const noexcept { return BIO_get_ktls_recv(SSL_get_rbio(ssl_)) == 1; }

}  // namespace sockserv::tls
