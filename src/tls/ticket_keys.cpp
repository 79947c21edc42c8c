// SPDX-License-Identifier: MIT
// Session ticket keys shared by processes: nginx's ssl_session_ticket_key layout (80 bytes: name,
// HMAC-SHA256 secret, AES-256 key). The first key encrypts new tickets; any key decrypts, and a
// ticket under an older key is renewed under the first (so rotation is: new key first, old key
// kept for a ticket lifetime, then dropped).
#include <sockserv/error.hpp>
#include <sockserv/tls/ssl_context.hpp>

#include "tls/context_impl.hpp"
#include "tls/tls_stream.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <fstream>
#include <iterator>

namespace sockserv {
namespace {

constexpr std::size_t name_size = 16;
constexpr std::size_t hmac_offset = 16;
constexpr std::size_t aes_offset = 48;
constexpr std::size_t secret_size = 32;

bool set_hmac(EVP_MAC_CTX* hctx, const TicketKey& key) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(
          OSSL_MAC_PARAM_KEY, const_cast<std::uint8_t*>(key.data() + hmac_offset), secret_size),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

// OpenSSL's ticket callback: enc = 1 seals a new ticket, 0 opens one. Returns 1 (done), 2
// (opened with an old key: issue a new ticket), 0 (unknown key: full handshake), -1 (error).
int on_ticket_key(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cctx,
                  EVP_MAC_CTX* hctx, int enc) {
  // The keys of the context the connection started with: OpenSSL calls the callback of that
  // one, though SNI may have switched the connection's SSL_CTX since.
  const auto* stream = tls::TlsStream::of(ssl);
  const auto* impl = stream != nullptr ? &stream->base_context() : nullptr;
  if (impl == nullptr || impl->ticket_keys.empty()) return -1;
  const auto& keys = impl->ticket_keys;
  if (enc == 1) {
    const auto& key = keys.front();
    std::memcpy(key_name, key.data(), name_size);
    const int iv_size = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
    if (RAND_bytes(iv, iv_size) != 1) return -1;
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.data() + aes_offset, iv) != 1) {
      return -1;
    }
    return set_hmac(hctx, key) ? 1 : -1;
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (std::memcmp(key_name, keys[i].data(), name_size) != 0) continue;
    if (!set_hmac(hctx, keys[i])) return -1;
    if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, keys[i].data() + aes_offset, iv) !=
        1) {
      return -1;
    }
    return i == 0 ? 1 : 2;
  }
  return 0;
}

}  // namespace

void SSLContext::set_session_ticket_keys(const std::vector<TicketKey>& keys) {
  impl_->check_mutable();
  if (!impl_->server) throw std::invalid_argument("set_session_ticket_keys: a server context only");
  impl_->ticket_keys = keys;
  SSL_CTX_set_tlsext_ticket_key_evp_cb(impl_->ctx, keys.empty() ? nullptr : on_ticket_key);
}

void SSLContext::load_session_ticket_keys(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_errno("load_session_ticket_keys", path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty() || bytes.size() % sizeof(TicketKey) != 0) {
    throw_error(ssl_errc::ssl_error, "load_session_ticket_keys",
                path + ": " + std::to_string(bytes.size()) +
                    " bytes; expected one or more 80-byte keys (nginx's ssl_session_ticket_key "
                    "format, e.g. `openssl rand 80 > " +
                    path + "`)");
  }
  std::vector<TicketKey> keys(bytes.size() / sizeof(TicketKey));
  std::memcpy(keys.data(), bytes.data(), bytes.size());
  set_session_ticket_keys(keys);
}

}  // namespace sockserv
