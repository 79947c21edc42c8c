// SPDX-License-Identifier: MIT
// libFuzzer target for the server side of a TLS handshake through sockserv's own TLS layer
// (attach_tls + do_handshake: TlsStream, the socket BIO, the SNI, ALPN and ticket-key callbacks
// of src/tls/). The input is what a client sends: it is written into one end of a Unix
// socketpair, which is then shut for writing, and the other end runs the server handshake under
// a short timeout, so every input ends in EOF, never in a wait.
//
// The server context is made once: an ECDSA P-256 key and a self-signed certificate generated in
// memory (nothing on disk), CERT_OPTIONAL (a TLS 1.2 client Certificate is parsed in clear),
// ALPN, fixed-name ticket keys (random secrets), SNI contexts for "fuzz.example" and
// "*.wild.example", and an SNI callback that picks a context for "cb.example" and throws for
// "throw.example". The seeds (fuzz/corpus/tls_handshake/, copied in by fuzz/run.sh) are what
// `openssl s_client` sent to an `nc -l` listener (ClientHellos for TLS 1.2 and 1.3 with those
// names and ALPN lists, resumptions with a ticket) or through a recording proxy to `openssl
// s_server -verify 1` (a TLS 1.2 client flight with a certificate); in the *-k0/*-k1 copies the
// ticket's key name is one of ours, so the ticket callback finds its key. OpenSSL itself is not
// instrumented: coverage guides the fuzzer through sockserv's code only.
//
// Properties: it never crashes; every failure is a SocketError (the SSLError family,
// TimeoutError, ConnectionError); a failed handshake reports no version, no verified peer
// certificate, and a read after it delivers no plaintext; the close after it never hangs.
// A handshake cannot complete here (the client's Finished depends on the server's random), so
// the record layer after it is out of reach.
#include <sockserv/error.hpp>
#include <sockserv/log.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/tls/ssl_context.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <typeinfo>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

// Larger inputs are cut: a client's first flights are a few KiB at most.
constexpr std::size_t max_input = std::size_t{64} * 1024;

void check(bool ok, const char* property) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property violated: %s\n", property);
    std::abort();
  }
}

// FUZZ_TLS_VERBOSE=1: say what each input led to (triage: rerun one input with it).
bool verbose() {
  static const bool on = std::getenv("FUZZ_TLS_VERBOSE") != nullptr;
  return on;
}

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "fuzz_tls_handshake setup: %s failed\n", what);
  std::abort();
}

struct EvpKeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};

// An ECDSA P-256 key and a self-signed certificate for it (CN=fuzz.example, with SANs for the
// SNI names), valid from a day ago for a year.
std::pair<std::unique_ptr<EVP_PKEY, EvpKeyFree>, std::unique_ptr<X509, X509Free>> make_identity() {
  std::unique_ptr<EVP_PKEY, EvpKeyFree> key(EVP_EC_gen("P-256"));
  if (!key) fatal("EVP_EC_gen");
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!cert) fatal("X509_new");
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  if (X509_set_pubkey(cert.get(), key.get()) != 1) fatal("X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("fuzz.example"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name,
                          "DNS:fuzz.example,DNS:*.wild.example,DNS:cb.example,IP:127.0.0.1");
  if (san == nullptr || X509_add_ext(cert.get(), san, -1) != 1) fatal("subjectAltName");
  X509_EXTENSION_free(san);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) fatal("X509_sign");
  return {std::move(key), std::move(cert)};
}

sockserv::SSLContext server_context(EVP_PKEY* key, X509* cert,
                                    const std::vector<std::string>& alpn) {
  sockserv::SSLContext ctx(sockserv::SSLContext::Protocol::TLS_SERVER);
  auto* native = static_cast<SSL_CTX*>(ctx.native_handle());
  if (SSL_CTX_use_certificate(native, cert) != 1) fatal("SSL_CTX_use_certificate");
  if (SSL_CTX_use_PrivateKey(native, key) != 1) fatal("SSL_CTX_use_PrivateKey");
  if (SSL_CTX_check_private_key(native) != 1) fatal("SSL_CTX_check_private_key");
  ctx.set_alpn_protocols(alpn);
  return ctx;
}

sockserv::SSLContext make_server_context() {
  // The SNI callback's warning ("refusing the handshake") would flood stderr: format it, drop it.
  sockserv::set_log_sink([](sockserv::LogLevel, std::string_view) {});
  auto [key, cert] = make_identity();
  sockserv::SSLContext context = server_context(key.get(), cert.get(), {"h2", "http/1.1"});
  context.set_verify_mode(sockserv::VerifyMode::CERT_OPTIONAL);
  // Two keys, so a ticket under the second ("renew") and under an unknown name both happen. The
  // names are fixed (the fuzzer can learn them from the comparison); the secrets are random.
  const char* const names[] = {"sockserv-fuzz-k0", "sockserv-fuzz-k1"};
  std::vector<sockserv::TicketKey> keys(2);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::memcpy(keys[i].data(), names[i], 16);
    if (RAND_bytes(keys[i].data() + 16, 64) != 1) fatal("RAND_bytes");
  }
  context.set_session_ticket_keys(keys);
  context.add_sni_context("fuzz.example", server_context(key.get(), cert.get(), {"x-fuzz", "h2"}));
  context.add_sni_context("*.wild.example", server_context(key.get(), cert.get(), {"http/1.1"}));
  auto by_callback = std::make_shared<const sockserv::SSLContext>(
      server_context(key.get(), cert.get(), {"x-callback"}));
  context.set_sni_callback(
      [by_callback](std::string_view name) -> std::shared_ptr<const sockserv::SSLContext> {
        if (name == "cb.example") return by_callback;
        if (name == "throw.example") throw std::runtime_error("no certificate for that name");
        return nullptr;
      });
  return context;
}

// Writes what fits into the socket without blocking (the socket buffer is raised first, so a
// capped input normally fits whole).
void feed(sockserv::Socket& client, const std::uint8_t* data, std::size_t size) {
  const int buffer = static_cast<int>(2 * max_input);
  ::setsockopt(client.fileno(), SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  std::size_t sent = 0;
  while (sent < size) {
    const ssize_t n =
        ::send(client.fileno(), data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  client.shutdown(SHUT_WR);
}

// The TLS state after a failed handshake must say so, whatever the input reached.
void check_failed_state(const sockserv::Socket& sock) {
  const sockserv::SSLObject* tls = sockserv::ssl_object(sock);
  check(tls != nullptr, "the socket keeps its TLS layer after a failed handshake");
  check(tls->server_side(), "server_side()");
  if (tls->handshake_done()) return;  // cannot happen, and is no memory error: tolerate
  if (verbose()) {
    std::fprintf(stderr, "state: sni \"%s\", alpn \"%s\", cipher %s\n",
                 tls->server_hostname().c_str(), tls->selected_alpn_protocol().c_str(),
                 tls->cipher() ? tls->cipher()->name.c_str() : "-");
  }
  check(tls->version().empty(), "no version() before the handshake is done");
  check(!tls->getpeercert(), "no verified peer certificate from a failed handshake");
  (void)tls->cipher();
  (void)tls->selected_alpn_protocol();
  (void)tls->server_hostname();
  (void)tls->session();
  (void)tls->session_reused();
  (void)tls->close_notify_received();
  (void)tls->pending();
}

void run(const std::uint8_t* data, std::size_t size) {
  static const sockserv::SSLContext context = make_server_context();
  auto [client, sock] = sockserv::socketpair();
  feed(client, data, std::min(size, max_input));
  sockserv::attach_tls(sock, context, /*server_side=*/true);
  sock.settimeout(50ms);
  bool done = false;
  try {
    sockserv::do_handshake(sock);
    done = true;
  } catch (const sockserv::SocketError& e) {
    // Refused: the normal outcome.
    if (verbose()) std::fprintf(stderr, "handshake: %s\n", e.what());
  }
  if (!done) {
    check_failed_state(sock);
    std::array<char, 512> buffer{};
    std::error_code ec;
    const std::size_t n = sock.recv_into(buffer, ec);
    if (verbose()) std::fprintf(stderr, "recv_into after it: %zu, %s\n", n, ec.message().c_str());
    check(n == 0 || static_cast<bool>(ec), "no plaintext after a failed handshake");
  }
  const auto start = std::chrono::steady_clock::now();
  sock.graceful_close(1ms);
  check(std::chrono::steady_clock::now() - start < 2s, "graceful_close(1ms) returns promptly");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    run(data, size);
  } catch (const std::exception& e) {
    // attach_tls and the setup have no business failing, and the handshake may only raise
    // SocketError (caught in run()).
    std::fprintf(stderr, "unexpected exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  }
  return 0;
}
