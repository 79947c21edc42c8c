// SPDX-License-Identifier: MIT
// getpeercert(): a verified peer certificate in words.
#include "tls/tls_stream.hpp"

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <ctime>
#include <memory>

namespace sockserv::tls {
namespace {

std::string name_text(const X509_NAME* name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(size)};
}

std::chrono::system_clock::time_point time_of(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

std::vector<std::string> alt_names(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      const auto* s = n->d.dNSName;
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<std::size_t>(ASN1_STRING_length(s))));
    } else if (n->type == GEN_IPADD) {
      const auto* ip = n->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ASN1_STRING_length(ip) == 16 ? AF_INET6 : AF_INET;
      if (::inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text) != nullptr) {
        out.push_back(std::string("IP Address:") + text);
      }
    } else if (n->type == GEN_EMAIL) {
      const auto* s = n->d.rfc822Name;
      out.push_back("email:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                           static_cast<std::size_t>(ASN1_STRING_length(s))));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace

std::optional<PeerCertificate> TlsStream::getpeercert() const {
  // Only a certificate that was asked for and verified: an unverified one must never reach a
  // handler looking like an identity.
  if ((SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) == 0) return std::nullopt;
  if (SSL_get_verify_result(ssl_) != X509_V_OK) return std::nullopt;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return std::nullopt;
  PeerCertificate out;
  out.subject = name_text(X509_get_subject_name(cert));
  out.issuer = name_text(X509_get_issuer_name(cert));
  out.subject_alt_names = alt_names(cert);
  out.not_before = time_of(X509_get0_notBefore(cert));
  out.not_after = time_of(X509_get0_notAfter(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      out.serial_number = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  return out;
}

}  // namespace sockserv::tls
