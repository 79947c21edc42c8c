// SPDX-License-Identifier: MIT
// SSLContextSlot: the servers' swappable context (built with or without OpenSSL).
#include <sockserv/tls/ssl_context.hpp>

#include <stdexcept>

namespace sockserv {

void SSLContextSlot::set(std::shared_ptr<const SSLContext> context) {
  if (context && !context->server_side()) {
    throw std::invalid_argument(
        "set_ssl_context: a server needs a server context "
        "(create_default_context(Purpose::CLIENT_AUTH))");
  }
  const std::lock_guard lock(mutex_);
  context_ = std::move(context);
}

std::shared_ptr<const SSLContext> SSLContextSlot::get() const {
  const std::lock_guard lock(mutex_);
  return context_;
}

}  // namespace sockserv
