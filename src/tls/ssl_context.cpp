// SPDX-License-Identifier: MIT
// SSLContext on OpenSSL 3: settings, and the callbacks a server's handshake makes (SNI, ALPN,
// key log). Ticket keys are in ticket_keys.cpp, connections in tls_stream.cpp.
#include <sockserv/error.hpp>
#include <sockserv/log.hpp>
#include <sockserv/tls/ssl_context.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include "tls/context_impl.hpp"
#include "tls/tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <stdexcept>

namespace sockserv {
namespace tls {

std::string openssl_reason(unsigned long code) {
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

void throw_openssl(std::string_view op, std::string_view what) {
  const auto code = ERR_get_error();
  std::string where(what);
  if (code != 0) where += (where.empty() ? "" : ": ") + openssl_reason(code);
  ERR_clear_error();
  throw_error(ssl_errc::ssl_error, op, where);
}

}  // namespace tls

namespace {

int to_openssl(TLSVersion version, bool maximum) {
  switch (version) {
    case TLSVersion::TLSv1_2:
      return TLS1_2_VERSION;
    case TLSVersion::TLSv1_3:
      return TLS1_3_VERSION;
    case TLSVersion::MINIMUM_SUPPORTED:
    case TLSVersion::MAXIMUM_SUPPORTED:
      break;
  }
  return maximum ? 0 : TLS1_2_VERSION;  // 0: the highest OpenSSL has; below 1.2 is never allowed
}

SSLContext::Impl& impl_of(SSL_CTX* ctx) {
  return *static_cast<SSLContext::Impl*>(SSL_CTX_get_app_data(ctx));
}

// SNI (servers): switches the connection to the context chosen for the name the client asked
// for. The chosen context is kept alive by the connection (TlsStream::adopt_context).
int on_server_name(SSL* ssl, int* alert, void* arg) {
  const auto& impl = *static_cast<SSLContext::Impl*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  std::shared_ptr<const SSLContext> chosen = impl.find_sni(name);
  if (!chosen && impl.sni_callback) {
    try {
      chosen = impl.sni_callback(name);
    } catch (const std::exception& e) {
      log(LogLevel::warning, std::string("TLS sni_callback for \"") + name + "\": " + e.what() +
                                 "; refusing the handshake");
      *alert = SSL_AD_HANDSHAKE_FAILURE;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
  }
  if (chosen && chosen->impl().get() != &impl) {
    chosen->impl()->frozen.store(true, std::memory_order_release);  // in use from now on
    if (auto* stream = tls::TlsStream::of(ssl)) stream->adopt_context(chosen->impl());
    SSL_set_SSL_CTX(ssl, chosen->impl()->ctx);
  }
  return SSL_TLSEXT_ERR_OK;
}

// ALPN (servers): the first of our protocols that the client offers; none: go on without ALPN.
int on_alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* arg) {
  const auto& ours = static_cast<SSLContext::Impl*>(arg)->alpn;
  for (std::size_t i = 0; i < ours.size(); i += 1 + ours[i]) {
    for (unsigned int j = 0; j < inlen; j += 1u + in[j]) {
      if (in[j] == ours[i] && j + 1 + in[j] <= inlen &&
          std::equal(in + j + 1, in + j + 1 + in[j], ours.begin() + static_cast<long>(i) + 1)) {
        *out = in + j + 1;
        *outlen = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

void on_keylog(const SSL* ssl, const char* line) {
  auto& impl = impl_of(SSL_get_SSL_CTX(ssl));
  const std::lock_guard lock(impl.keylog_mutex);
  if (impl.keylog == nullptr) return;
  std::fputs(line, impl.keylog);
  std::fputc('\n', impl.keylog);
  std::fflush(impl.keylog);
}

}  // namespace

SSLContext::Impl::Impl(bool is_server) : server(is_server) {
  ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) tls::throw_openssl("SSL_CTX_new");
  SSL_CTX_set_app_data(ctx, this);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
  // RELEASE_BUFFERS: an idle connection holds no record buffers (about 34 KiB saved each).
  // PARTIAL_WRITE and MOVING_WRITE_BUFFER: SSL_write behaves like send(), so the sockets
  // layer's send loops work unchanged over TLS.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (server) {
    // Sessions of clients that sent a certificate resume only under the same id context.
    static constexpr unsigned char id[] = "sockserv";
    SSL_CTX_set_session_id_context(ctx, id, sizeof id - 1);
    // SSL_CTX_set_tlsext_servername_callback() and _arg() without their macros' C casts.
    SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(on_server_name));
    SSL_CTX_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, this);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
  }
}

SSLContext::Impl::~Impl() {
  SSL_CTX_free(ctx);
  if (keylog != nullptr) std::fclose(keylog);
}

void SSLContext::Impl::check_mutable() const {
  if (frozen.load(std::memory_order_acquire)) {
    throw std::logic_error(
        "SSLContext: already used by a connection; build a new context instead (reload)");
  }
}

std::shared_ptr<const SSLContext> SSLContext::Impl::find_sni(std::string_view name) const {
  auto equal_nocase = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& [pattern, context] : sni) {
    if (equal_nocase(pattern, name)) return context;
  }
  const auto dot = name.find('.');
  if (dot == std::string_view::npos) return nullptr;
  for (const auto& [pattern, context] : sni) {
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.' &&
        equal_nocase(std::string_view(pattern).substr(1), name.substr(dot))) {
      return context;
    }
  }
  return nullptr;
}

void SSLContext::Impl::note_ktls_fallback(bool send, bool recv) {
  if (ktls_fallback_logged.exchange(true)) return;
  log(LogLevel::warning, std::string("TLS: kernel TLS was asked for but is not in effect (send ") +
                             (send ? "on" : "off") + ", receive " + (recv ? "on" : "off") +
                             "): no `tls` kernel module or an unsupported cipher; using "
                             "OpenSSL in user space (logged once)");
}

bool tls_available() noexcept { return true; }

SSLContext::SSLContext(Protocol protocol)
    : impl_(std::make_shared<Impl>(protocol == Protocol::TLS_SERVER)) {}

SSLContext::~SSLContext() = default;

bool SSLContext::server_side() const noexcept { return impl_->server; }

void SSLContext::load_cert_chain(const std::string& certfile, const std::string& keyfile,
                                 const std::string& password) {
  impl_->check_mutable();
  SSL_CTX* ctx = impl_->ctx;
  if (SSL_CTX_use_certificate_chain_file(ctx, certfile.c_str()) != 1) {
    tls::throw_openssl("load_cert_chain", certfile);
  }
  // The password callback only for this call: the context keeps no copy of the password.
  SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<std::string*>(&password));
  SSL_CTX_set_default_passwd_cb(ctx, [](char* buf, int size, int, void* user) {
    const auto& pw = *static_cast<const std::string*>(user);
    if (pw.empty() || static_cast<int>(pw.size()) > size) return 0;
    std::copy(pw.begin(), pw.end(), buf);
    return static_cast<int>(pw.size());
  });
  const auto& key = keyfile.empty() ? certfile : keyfile;
  const bool loaded = SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) == 1;
  SSL_CTX_set_default_passwd_cb(ctx, nullptr);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
  if (!loaded) tls::throw_openssl("load_cert_chain", key);
  if (SSL_CTX_check_private_key(ctx) != 1) {
    tls::throw_openssl("load_cert_chain", key + " does not match " + certfile);
  }
}

void SSLContext::load_verify_locations(const std::string& cafile, const std::string& capath) {
  impl_->check_mutable();
  if (SSL_CTX_load_verify_locations(impl_->ctx, cafile.empty() ? nullptr : cafile.c_str(),
                                    capath.empty() ? nullptr : capath.c_str()) != 1) {
    tls::throw_openssl("load_verify_locations", cafile.empty() ? capath : cafile);
  }
  if (impl_->server && !cafile.empty()) {
    // The CA names a server sends when it asks for a client certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cafile.c_str())) {
      SSL_CTX_set_client_CA_list(impl_->ctx, names);
    }
  }
}

void SSLContext::load_default_certs() {
  impl_->check_mutable();
  if (SSL_CTX_set_default_verify_paths(impl_->ctx) != 1) {
    tls::throw_openssl("load_default_certs");
  }
}

void SSLContext::set_verify_mode(VerifyMode mode) {
  impl_->check_mutable();
  if (mode == VerifyMode::CERT_NONE && impl_->check_hostname) {
    throw std::invalid_argument("SSLContext: CERT_NONE needs check_hostname off first");
  }
  int flags = SSL_VERIFY_NONE;
  if (mode != VerifyMode::CERT_NONE) flags = SSL_VERIFY_PEER;
  if (mode == VerifyMode::CERT_REQUIRED && impl_->server) flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(impl_->ctx, flags, nullptr);
  impl_->verify = mode;
}

VerifyMode SSLContext::verify_mode() const noexcept { return impl_->verify; }

void SSLContext::set_check_hostname(bool on) {
  impl_->check_mutable();
  // As Python: turning it on with CERT_NONE turns verification on too.
  if (on && impl_->verify == VerifyMode::CERT_NONE) set_verify_mode(VerifyMode::CERT_REQUIRED);
  impl_->check_hostname = on;
}

bool SSLContext::check_hostname() const noexcept { return impl_->check_hostname; }

void SSLContext::set_minimum_version(TLSVersion version) {
  impl_->check_mutable();
  SSL_CTX_set_min_proto_version(impl_->ctx, to_openssl(version, false));
  impl_->min_version = version;
}

TLSVersion SSLContext::minimum_version() const noexcept { return impl_->min_version; }

void SSLContext::set_maximum_version(TLSVersion version) {
  impl_->check_mutable();
  SSL_CTX_set_max_proto_version(impl_->ctx, to_openssl(version, true));
  impl_->max_version = version;
}

TLSVersion SSLContext::maximum_version() const noexcept { return impl_->max_version; }

void SSLContext::set_ciphers(const std::string& ciphers) {
  impl_->check_mutable();
  if (SSL_CTX_set_cipher_list(impl_->ctx, ciphers.c_str()) != 1) {
    tls::throw_openssl("set_ciphers", ciphers);
  }
}

void SSLContext::set_ciphersuites(const std::string& suites) {
  impl_->check_mutable();
  if (SSL_CTX_set_ciphersuites(impl_->ctx, suites.c_str()) != 1) {
    tls::throw_openssl("set_ciphersuites", suites);
  }
}

void SSLContext::set_alpn_protocols(const std::vector<std::string>& protocols) {
  impl_->check_mutable();
  std::vector<unsigned char> wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) {
      throw std::invalid_argument("set_alpn_protocols: a name must have 1 to 255 bytes: \"" + p +
                                  "\"");
    }
    wire.push_back(static_cast<unsigned char>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  impl_->alpn = std::move(wire);
  if (impl_->server) {
    SSL_CTX_set_alpn_select_cb(impl_->ctx, impl_->alpn.empty() ? nullptr : on_alpn_select,
                               impl_.get());
  } else if (SSL_CTX_set_alpn_protos(impl_->ctx, impl_->alpn.data(),
                                     static_cast<unsigned>(impl_->alpn.size())) != 0) {
    tls::throw_openssl("set_alpn_protocols");
  }
}

void SSLContext::add_sni_context(const std::string& server_name, SSLContext context) {
  impl_->check_mutable();
  if (!impl_->server || !context.impl_->server) {
    throw std::invalid_argument("add_sni_context: both contexts must be server contexts");
  }
  impl_->sni.emplace_back(server_name, std::make_shared<const SSLContext>(std::move(context)));
}

void SSLContext::set_sni_callback(SNICallback callback) {
  impl_->check_mutable();
  impl_->sni_callback = std::move(callback);
}

void SSLContext::set_num_tickets(std::size_t count) {
  impl_->check_mutable();
  SSL_CTX_set_num_tickets(impl_->ctx, count);
}

std::size_t SSLContext::num_tickets() const noexcept { return SSL_CTX_get_num_tickets(impl_->ctx); }

void SSLContext::set_keylog_filename(const std::string& path) {
  impl_->check_mutable();
  std::FILE* file = std::fopen(path.c_str(), "ae");
  if (file == nullptr) throw_errno("set_keylog_filename", path);
  const std::lock_guard lock(impl_->keylog_mutex);
  if (impl_->keylog != nullptr) std::fclose(impl_->keylog);
  impl_->keylog = file;
  SSL_CTX_set_keylog_callback(impl_->ctx, on_keylog);
}

void SSLContext::set_ktls(bool on) {
  impl_->check_mutable();
  if (on) {
    SSL_CTX_set_options(impl_->ctx, SSL_OP_ENABLE_KTLS);
  } else {
    SSL_CTX_clear_options(impl_->ctx, SSL_OP_ENABLE_KTLS);
  }
  impl_->ktls = on;
}

bool SSLContext::ktls() const noexcept { return impl_->ktls; }

void* SSLContext::native_handle() const noexcept { return impl_->ctx; }

SSLContext create_default_context(Purpose purpose, const std::string& cafile) {
  const bool server = purpose == Purpose::CLIENT_AUTH;
  SSLContext ctx(server ? SSLContext::Protocol::TLS_SERVER : SSLContext::Protocol::TLS_CLIENT);
  if (!server) {
    ctx.set_verify_mode(VerifyMode::CERT_REQUIRED);
    ctx.set_check_hostname(true);
    if (cafile.empty()) {
      ctx.load_default_certs();
    } else {
      ctx.load_verify_locations(cafile);
    }
  } else if (!cafile.empty()) {
    ctx.load_verify_locations(cafile);
  }
  // As Python's create_default_context: SSLKEYLOGFILE names a key log (for Wireshark).
  if (const char* keylog = std::getenv("SSLKEYLOGFILE"); keylog != nullptr && *keylog != '\0') {
    ctx.set_keylog_filename(keylog);
  }
  return ctx;
}

}  // namespace sockserv
