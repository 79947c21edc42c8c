// SPDX-License-Identifier: MIT
// The TLS API in a build without OpenSSL: it links, and says why it cannot work.
#include <sockserv/error.hpp>
#include <sockserv/tls/ssl_socket.hpp>

namespace sockserv {
namespace {

[[noreturn]] void unavailable(std::string_view op) { throw_error(ssl_errc::unavailable, op); }

}  // namespace

struct SSLContext::Impl {};

bool tls_available() noexcept { return false; }
SSLContext::SSLContext(Protocol) { unavailable("SSLContext"); }
SSLContext::~SSLContext() = default;
bool SSLContext::server_side() const noexcept { return false; }
void SSLContext::load_cert_chain(const std::string&, const std::string&, const std::string&) {}
void SSLContext::load_verify_locations(const std::string&, const std::string&) {}
void SSLContext::load_default_certs() {}
void SSLContext::set_verify_mode(VerifyMode) {}
VerifyMode SSLContext::verify_mode() const noexcept { return VerifyMode::CERT_NONE; }
void SSLContext::set_check_hostname(bool) {}
bool SSLContext::check_hostname() const noexcept { return false; }
void SSLContext::set_minimum_version(TLSVersion) {}
TLSVersion SSLContext::minimum_version() const noexcept { return TLSVersion::TLSv1_2; }
void SSLContext::set_maximum_version(TLSVersion) {}
TLSVersion SSLContext::maximum_version() const noexcept { return TLSVersion::MAXIMUM_SUPPORTED; }
void SSLContext::set_ciphers(const std::string&) {}
void SSLContext::set_ciphersuites(const std::string&) {}
void SSLContext::set_alpn_protocols(const std::vector<std::string>&) {}
void SSLContext::add_sni_context(const std::string&, SSLContext) {}
void SSLContext::set_sni_callback(SNICallback) {}
void SSLContext::set_num_tickets(std::size_t) {}
std::size_t SSLContext::num_tickets() const noexcept { return 0; }
void SSLContext::set_session_ticket_keys(const std::vector<TicketKey>&) {}
void SSLContext::load_session_ticket_keys(const std::string&) {}
void SSLContext::set_keylog_filename(const std::string&) {}
void SSLContext::set_ktls(bool) {}
bool SSLContext::ktls() const noexcept { return false; }
void* SSLContext::native_handle() const noexcept { return nullptr; }
SSLSocket SSLContext::wrap_socket(Socket, bool, const std::string&, bool, const SSLSession*) const {
  unavailable("wrap_socket");
}
SSLContext create_default_context(Purpose, const std::string&) {
  return SSLContext(SSLContext::Protocol::TLS_CLIENT);
}
SSLObject* ssl_object(const Socket&) noexcept { return nullptr; }
void attach_tls(Socket&, const SSLContext&, bool, const std::string&, const SSLSession*,
                std::string_view) {
  unavailable("wrap_socket");
}
int detail::tls_handshake_some(Socket&, short&, std::error_code& ec) noexcept {
  ec = ssl_errc::unavailable;
  return -1;
}
void do_handshake(Socket&) { unavailable("do_handshake"); }
void SSLSocket::do_handshake() { unavailable("do_handshake"); }
Socket SSLSocket::unwrap() { unavailable("unwrap"); }

}  // namespace sockserv
