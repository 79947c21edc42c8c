// SPDX-License-Identifier: MIT
// SSLContext's shared state (private): the SSL_CTX and what sockserv keeps beside it for the
// callbacks OpenSSL makes during a handshake (SNI, ALPN, ticket keys, key log).
#pragma once

#include <sockserv/tls/ssl_context.hpp>

#include <openssl/ssl.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sockserv {

struct SSLContext::Impl {
  explicit Impl(bool server);
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();

  // Setters call this first: a context in use is frozen (OpenSSL contexts must not change
  // under live connections; reload = a new context).
  void check_mutable() const;
  // The context for an SNI name: an add_sni_context() entry (exact, then "*.rest"), or null.
  std::shared_ptr<const SSLContext> find_sni(std::string_view name) const;
  // Logs, once per context, that kTLS was asked for and is not in effect.
  void note_ktls_fallback(bool send, bool recv);

  SSL_CTX* ctx = nullptr;
  bool server = false;
  VerifyMode verify = VerifyMode::CERT_NONE;
  bool check_hostname = false;
  TLSVersion min_version = TLSVersion::TLSv1_2;
  TLSVersion max_version = TLSVersion::MAXIMUM_SUPPORTED;
  std::vector<unsigned char> alpn;  // wire format: length-prefixed names
  std::vector<std::pair<std::string, std::shared_ptr<const SSLContext>>> sni;
  SNICallback sni_callback;
  std::vector<TicketKey> ticket_keys;  // empty: OpenSSL's own random key
  bool ktls = false;
  std::atomic<bool> frozen{false};
  std::atomic<bool> ktls_fallback_logged{false};
  std::mutex keylog_mutex;
  std::FILE* keylog = nullptr;
};

namespace tls {

// Throws SSLError for the failed OpenSSL call `op`, with the reason from OpenSSL's error queue.
[[noreturn]] void throw_openssl(std::string_view op, std::string_view what = {});
// OpenSSL's text for an error code from its queue ("error:0A000086:SSL routines::certificate
// verify failed").
std::string openssl_reason(unsigned long code);

}  // namespace tls
}  // namespace sockserv
