// SPDX-License-Identifier: MIT
// A BIO over a socket descriptor that never raises SIGPIPE: recv/send with MSG_NOSIGNAL.
// OpenSSL's own socket BIO writes with write(2), which would kill a program whose peer left,
// and sockserv promises never to change a process's signal dispositions.
#include "sys/fd.hpp"
#include "tls/tls_stream.hpp"

#include <openssl/bio.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>

namespace sockserv::tls {
namespace {

TlsStream& stream_of(BIO* bio) { return *static_cast<TlsStream*>(BIO_get_data(bio)); }
int fd_of(BIO* bio) { return stream_of(bio).fd(); }

int bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const auto n = sys::retry_eintr(
      [&] { return ::send(fd_of(bio), data, static_cast<std::size_t>(size), MSG_NOSIGNAL); });
  if (n < 0 && sys::would_block(errno)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int bio_read(BIO* bio, char* into, int size) {
  BIO_clear_retry_flags(bio);
  if (std::string* prefix = stream_of(bio).prefix()) {  // bytes read before TLS started
    const auto n = std::min(prefix->size(), static_cast<std::size_t>(size));
    std::copy_n(prefix->data(), n, into);
    prefix->erase(0, n);
    if (prefix->empty()) stream_of(bio).drop_prefix();
    return static_cast<int>(n);
  }
  const auto n =
      sys::retry_eintr([&] { return ::recv(fd_of(bio), into, static_cast<std::size_t>(size), 0); });
  if (n < 0 && sys::would_block(errno)) BIO_set_retry_read(bio);
  if (n == 0) BIO_set_flags(bio, BIO_FLAGS_IN_EOF);
  return static_cast<int>(n);
}

long bio_ctrl(BIO* bio, int command, long, void* arg) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    case BIO_C_GET_FD:
      if (arg != nullptr) *static_cast<int*>(arg) = fd_of(bio);
      return fd_of(bio);
    default:
      return 0;
  }
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* socket_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "sockserv socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

}  // namespace

BIO* new_socket_bio(TlsStream& stream) {
  BIO* bio = BIO_new(socket_method());
  if (bio != nullptr) BIO_set_data(bio, &stream);
  return bio;
}

}  // namespace sockserv::tls
