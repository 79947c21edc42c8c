// SPDX-License-Identifier: MIT
// Certificates for the TLS tests, made at test time with the `openssl` command in a directory the
// test owns (a TempDir), so no key material lives in the repository and nothing expires.
//
//   test::TempDir dir;
//   const auto certs = test::make_tls_certs(dir.path());   // throws when openssl fails
//   ctx.load_cert_chain(certs.server_cert, certs.server_key);
//
// Every key is EC P-256 (milliseconds to generate, accepted by OpenSSL, GnuTLS and Python). Tests
// that need the command call have_openssl() first and GTEST_SKIP() without it.
#pragma once

#include <string>

namespace sockserv::test {

struct TlsCerts {
  std::string dir;
  // The test CA ("CN=sockserv test CA"): it signs the server, other and client certificates.
  std::string ca_cert, ca_key;
  // CN=localhost, SAN DNS:localhost and IP:127.0.0.1, serverAuth.
  std::string server_cert, server_key;
  // CN=other.test, SAN DNS:other.test: the certificate SNI picks for other.test.
  std::string other_cert, other_key;
  // CN=sockserv test client, clientAuth, signed by the CA.
  std::string client_cert, client_key;
  // CN=untrusted client, self-signed: a client (or a CA file) nobody trusts.
  std::string untrusted_cert, untrusted_key;
};

inline constexpr const char* kServerCN = "localhost";
inline constexpr const char* kOtherCN = "other.test";
inline constexpr const char* kClientCN = "sockserv test client";

// True when the openssl command can be run.
bool have_openssl();

// Makes the CA and the four leaf certificates above in `dir`. Throws std::runtime_error with
// openssl's stderr when a command fails.
TlsCerts make_tls_certs(const std::string& dir);

// Another server certificate signed by certs' CA, with subject CN=`cn` and the same SANs as
// server_cert (DNS:localhost, IP:127.0.0.1): what a certificate renewal looks like. Written to
// `cert_path` and `key_path` (replaced if they exist).
void issue_server_cert(const TlsCerts& certs, const std::string& cn, const std::string& cert_path,
                       const std::string& key_path);

// `count` random 80-byte session ticket keys (nginx's format) in `path`.
void write_ticket_keys(const std::string& path, int count = 1);

}  // namespace sockserv::test
