// SPDX-License-Identifier: MIT
// The TLS options of `sockserv serve` and `sockserv send`, and the contexts they describe.
#pragma once

#include <sockserv/socket.hpp>
#include <sockserv/tls/ssl_context.hpp>

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sockserv::tool {

struct ServerTlsOptions {
  std::string cert;                 // --tls-cert
  std::string key;                  // --tls-key
  std::vector<std::string> sni;     // --tls-sni NAME=CERT,KEY (repeatable)
  std::string alpn;                 // --tls-alpn a,b
  std::string client_ca;            // --tls-client-ca: verify (and require) client certificates
  bool client_optional = false;     // --tls-client-optional: ask, do not require
  double handshake_timeout = 10;    // --tls-handshake-timeout SECONDS
  std::string ticket_keys;          // --tls-ticket-keys FILE
  std::string min_version = "1.2";  // --tls-min-version 1.2|1.3
  bool ktls = false;                // --tls-ktls

  bool enabled() const noexcept { return !cert.empty(); }
};

void add_server_tls_options(CLI::App& cmd, ServerTlsOptions& o);

// Reads every file the options name (certificates, SNI certificates, client CA, ticket keys)
// into a new server context. Throws (SSLError, ...) naming the file that failed: SIGHUP then
// keeps the old context.
std::shared_ptr<const SSLContext> build_server_context(const ServerTlsOptions& o);

struct ClientTlsOptions {
  bool tls = false;         // --tls
  std::string cafile;       // --cafile (default: the system's CAs)
  std::string server_name;  // --server-name (default: the address's host)
  std::string alpn;         // --alpn a,b
  std::string cert, key;    // --cert/--key: a client certificate
  bool insecure = false;    // --insecure: no verification at all
};

void add_client_tls_options(CLI::App& cmd, ClientTlsOptions& o);
SSLContext build_client_context(const ClientTlsOptions& o);
// The name to send as SNI and to verify: --server-name, else the host part of `address`.
std::string client_server_name(const ClientTlsOptions& o, const std::string& address);

// The line `--handler tlsinfo` answers with: "version=TLSv1.3 cipher=NAME alpn=PROTO sni=NAME
// resumed=0|1 peer=SUBJECT" ("-" where absent; peer only for a verified client certificate).
std::string tls_info_line(const Socket& sock);

}  // namespace sockserv::tool
