// SPDX-License-Identifier: MIT
#include <sockserv/error.hpp>

#include <netdb.h>

#include <cerrno>

namespace sockserv {
namespace {

class SockservCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sockserv"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::connection_broken:
        return "connection broken: peer closed mid-message";
      case errc::line_too_long:
        return "line too long";
      case errc::frame_too_large:
        return "frame too large";
      case errc::malformed_frame:
        return "malformed frame header";
      case errc::datagram_truncated:
        return "datagram truncated";
      case errc::message_too_large:
        return "message too large";
      case errc::control_truncated:
        return "ancillary data truncated: more descriptors than maxfds";
    }
    return "unknown sockserv error";
  }
};

class SslCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ssl"; }
  std::string message(int code) const override {
    switch (static_cast<ssl_errc>(code)) {
      case ssl_errc::ssl_error:
        return "TLS error";
      case ssl_errc::zero_return:
        return "TLS connection closed (close_notify)";
      case ssl_errc::unexpected_eof:
        return "TLS stream truncated: EOF without close_notify";
      case ssl_errc::cert_verification:
        return "certificate verify failed";
      case ssl_errc::unavailable:
        return "TLS unavailable: sockserv was built without OpenSSL";
    }
    return "unknown TLS error";
  }
};

class GaiCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int code) const override { return ::gai_strerror(code); }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const SockservCategory category;
  return category;
}

const std::error_category& ssl_category() noexcept {
  static const SslCategory category;
  return category;
}

const std::error_category& gai_category() noexcept {
  static const GaiCategory category;
  return category;
}

bool is_connection_lost(std::error_code ec) noexcept {
  if (ec == errc::connection_broken) return true;
  if (ec.category() != std::generic_category() && ec.category() != std::system_category()) {
    return false;
  }
  switch (ec.value()) {
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
    case ENOTCONN:
      return true;
    default:
      return false;
  }
}

void throw_error(std::error_code ec, std::string_view operation, std::string_view where) {
  std::string what(operation);
  if (!where.empty()) {
    what += ' ';
    what += where;
  }
  if (ec.category() == ssl_category()) {
    switch (static_cast<ssl_errc>(ec.value())) {
      case ssl_errc::zero_return:
        throw SSLZeroReturnError(ec, what);
      case ssl_errc::unexpected_eof:
        throw SSLEOFError(ec, what);
      case ssl_errc::cert_verification:
        throw SSLCertVerificationError(ec, what);
      default:
        throw SSLError(ec, what);
    }
  }
  if (ec == std::errc::timed_out) throw TimeoutError(ec, what);
  // Python's ConnectionRefusedError is a ConnectionError too.
  if (is_connection_lost(ec) || ec == std::errc::connection_refused)
    throw ConnectionError(ec, what);
  throw SocketError(ec, what);
}

void throw_errno(std::string_view operation, std::string_view where) {
  throw_error(std::error_code(errno, std::generic_category()), operation, where);
}

}  // namespace sockserv
