// SPDX-License-Identifier: MIT
#include "tls_options.hpp"

#include <sockserv/tls/ssl_socket.hpp>

#include <sstream>
#include <stdexcept>

namespace sockserv::tool {
namespace {

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The settings every server context of one `serve` shares: the default one and each SNI one.
SSLContext base_server_context(const ServerTlsOptions& o, const std::string& cert,
                               const std::string& key) {
  auto ctx = create_default_context(Purpose::CLIENT_AUTH);
  ctx.load_cert_chain(cert, key);
  ctx.set_minimum_version(o.min_version == "1.3" ? TLSVersion::TLSv1_3 : TLSVersion::TLSv1_2);
  if (!o.alpn.empty()) ctx.set_alpn_protocols(split_list(o.alpn));
  if (!o.client_ca.empty()) {
    ctx.load_verify_locations(o.client_ca);
    ctx.set_verify_mode(o.client_optional ? VerifyMode::CERT_OPTIONAL : VerifyMode::CERT_REQUIRED);
  }
  if (!o.ticket_keys.empty()) ctx.load_session_ticket_keys(o.ticket_keys);
  if (o.ktls) ctx.set_ktls(true);
  return ctx;
}

}  // namespace

void add_server_tls_options(CLI::App& cmd, ServerTlsOptions& o) {
  auto* cert = cmd.add_option("--tls-cert", o.cert, "TLS: certificate chain (PEM); turns TLS on")
                   ->group("TLS");
  auto* key = cmd.add_option("--tls-key", o.key, "TLS: private key (PEM)")->group("TLS");
  cert->needs(key);
  key->needs(cert);
  cmd.add_option("--tls-sni", o.sni,
                 "TLS: NAME=CERT,KEY: a certificate for clients asking for NAME (*.example.org "
                 "for one label); repeatable")
      ->group("TLS")
      ->needs(cert);
  cmd.add_option("--tls-alpn", o.alpn, "TLS: ALPN protocols, comma-separated, preferred first")
      ->group("TLS")
      ->needs(cert);
  auto* ca = cmd.add_option("--tls-client-ca", o.client_ca,
                            "TLS: require client certificates verified against these CAs")
                 ->group("TLS")
                 ->needs(cert);
  cmd.add_flag("--tls-client-optional", o.client_optional,
               "TLS: with --tls-client-ca, ask for a certificate without requiring one")
      ->group("TLS")
      ->needs(ca);
  cmd.add_option("--tls-handshake-timeout", o.handshake_timeout,
                 "TLS: seconds the whole handshake may take")
      ->group("TLS")
      ->default_val(10)
      ->check(CLI::PositiveNumber);
  cmd.add_option("--tls-ticket-keys", o.ticket_keys,
                 "TLS: session ticket keys, one or more 80-byte keys (nginx's format; the first "
                 "encrypts); processes sharing the file resume each other's sessions")
      ->group("TLS")
      ->needs(cert);
  cmd.add_option("--tls-min-version", o.min_version, "TLS: 1.2 or 1.3")
      ->group("TLS")
      ->check(CLI::IsMember({"1.2", "1.3"}))
      ->default_val("1.2");
  cmd.add_flag("--tls-ktls", o.ktls, "TLS: kernel TLS where the kernel offers it (logged if not)")
      ->group("TLS");
}

std::shared_ptr<const SSLContext> build_server_context(const ServerTlsOptions& o) {
  auto ctx = base_server_context(o, o.cert, o.key);
  for (const auto& entry : o.sni) {
    const auto eq = entry.find('=');
    const auto comma = entry.find(',', eq == std::string::npos ? 0 : eq);
    if (eq == std::string::npos || comma == std::string::npos || eq == 0) {
      throw std::invalid_argument("--tls-sni " + entry + ": expected NAME=CERT,KEY");
    }
    ctx.add_sni_context(
        entry.substr(0, eq),
        base_server_context(o, entry.substr(eq + 1, comma - eq - 1), entry.substr(comma + 1)));
  }
  return std::make_shared<const SSLContext>(std::move(ctx));
}

void add_client_tls_options(CLI::App& cmd, ClientTlsOptions& o) {
  cmd.add_flag("--tls", o.tls, "Connect with TLS")->group("TLS");
  cmd.add_option("--cafile", o.cafile, "TLS: CAs to verify the server with (default: system's)")
      ->group("TLS");
  cmd.add_option("--server-name", o.server_name, "TLS: name for SNI and verification")
      ->group("TLS");
  cmd.add_option("--alpn", o.alpn, "TLS: ALPN protocols, comma-separated")->group("TLS");
  auto* cert = cmd.add_option("--cert", o.cert, "TLS: client certificate (PEM)")->group("TLS");
  auto* key = cmd.add_option("--key", o.key, "TLS: client key (PEM)")->group("TLS");
  cert->needs(key);
  key->needs(cert);
  cmd.add_flag("--insecure", o.insecure, "TLS: do not verify the server (testing only)")
      ->group("TLS");
}

SSLContext build_client_context(const ClientTlsOptions& o) {
  SSLContext ctx = o.insecure ? SSLContext(SSLContext::Protocol::TLS_CLIENT)
                              : create_default_context(Purpose::SERVER_AUTH, o.cafile);
  if (!o.alpn.empty()) ctx.set_alpn_protocols(split_list(o.alpn));
  if (!o.cert.empty()) ctx.load_cert_chain(o.cert, o.key);
  return ctx;
}

std::string client_server_name(const ClientTlsOptions& o, const std::string& address) {
  if (!o.server_name.empty()) return o.server_name;
  if (address.starts_with("unix:")) return {};
  if (address.starts_with("[")) return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

std::string tls_info_line(const Socket& sock) {
  const SSLObject* tls = ssl_object(sock);
  if (tls == nullptr) return "version=- cipher=- alpn=- sni=- resumed=0 peer=-\n";
  auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  const auto cipher = tls->cipher();
  const auto peer = tls->getpeercert();
  return "version=" + or_dash(tls->version()) + " cipher=" + (cipher ? cipher->name : "-") +
         " alpn=" + or_dash(tls->selected_alpn_protocol()) +
         " sni=" + or_dash(tls->server_hostname()) +
         " resumed=" + (tls->session_reused() ? "1" : "0") +
         " peer=" + (peer ? or_dash(peer->subject) : "-") + "\n";
}

}  // namespace sockserv::tool
