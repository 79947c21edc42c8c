// SPDX-License-Identifier: MIT
// The TLS ceiling of bench/compare.py: a minimal single-threaded OpenSSL + epoll echo loop,
// written by hand.
//
//   - Edge-triggered: each connection is registered once for EPOLLIN | EPOLLOUT and, on any
//     event, is served until OpenSSL says it would block (SSL_ERROR_WANT_READ or _WANT_WRITE).
//     Waiting only then is what makes edge triggering correct: a WANT_READ means the socket gave
//     EAGAIN and OpenSSL holds no complete record, so the next bytes bring a new edge; records
//     OpenSSL already read (SSL_has_pending) bring none, so they are drained before waiting.
//   - OpenSSL on the descriptor (SSL_set_fd: a socket BIO), read-ahead on, so one recv() takes
//     every record the socket has instead of a header and then a body.
//   - One 16 KiB buffer (a record's plaintext) serves every connection: what SSL_read returns,
//     up to a full buffer of what OpenSSL already holds, goes back in one SSL_write (one record,
//     one send()). A write the socket refuses is copied into the connection's `pending` bytes
//     and retried, as OpenSSL requires, with the same length (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
//     lets the bytes move); the connection reads nothing more until they are out.
//   - The client's close_notify is answered with ours (SSL_shutdown, once) before the close;
//     after a fatal error (a reset, EOF without close_notify, a failed handshake) OpenSSL forbids
//     SSL_shutdown, and the connection is just closed.
//
// Server settings, the same in every TLS peer: TLS 1.2 minimum, OpenSSL's default ciphers and
// groups, session tickets on (OpenSSL's default: two per TLS 1.3 handshake), no client
// certificate requested, and SSL_MODE_RELEASE_BUFFERS: an idle connection's record buffers go
// back to the allocator (CPython's ssl module sets it too).
//
//   openssl_epoll_echo PORT CERT_CHAIN.pem KEY.pem
//       PORT 0: the kernel picks; prints "listening on 127.0.0.1:PORT"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct Conn {
  int fd;
  SSL* ssl;
  std::string pending;  // plaintext of an SSL_write that returned WANT_WRITE, to retry as is
};

int epfd;
char buffer[16384];

// An SSL call failed with `error`: wait for the next edge, or end the connection.
void settle(Conn* c, int error) {
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return;
  if (error == SSL_ERROR_ZERO_RETURN) SSL_shutdown(c->ssl);  // close_notify for the client's
  ERR_clear_error();  // SSL_get_error reads this thread's error queue: leave it empty
  SSL_free(c->ssl);   // SSL_set_fd's BIO does not close the descriptor
  ::close(c->fd);     // also leaves the epoll set
  delete c;
}

// Any event: handshake, then echo until OpenSSL would block.
void serve(Conn* c) {
  SSL* const ssl = c->ssl;
  if (!SSL_is_init_finished(ssl)) {
    const int r = SSL_do_handshake(ssl);
    if (r <= 0) return settle(c, SSL_get_error(ssl, r));
  }
  for (;;) {
    if (!c->pending.empty()) {
      const int w = SSL_write(ssl, c->pending.data(), static_cast<int>(c->pending.size()));
      if (w <= 0) return settle(c, SSL_get_error(ssl, w));
      std::string().swap(c->pending);  // give the memory back
    }
    // Gather what OpenSSL holds already, a record per SSL_read, without another recv().
    int got = 0;
    int r;
    while ((r = SSL_read(ssl, buffer + got, static_cast<int>(sizeof buffer) - got)) > 0) {
      got += r;
      if (got == static_cast<int>(sizeof buffer) || !SSL_has_pending(ssl)) break;
    }
    const int error = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
    const bool fatal = error != SSL_ERROR_NONE && error != SSL_ERROR_WANT_READ &&
                       error != SSL_ERROR_WANT_WRITE && error != SSL_ERROR_ZERO_RETURN;
    if (got > 0 && !fatal) {
      const int w = SSL_write(ssl, buffer, got);
      if (w <= 0) {
        c->pending.assign(buffer, static_cast<std::size_t>(got));
        return settle(c, SSL_get_error(ssl, w));
      }
    }
    if (error != SSL_ERROR_NONE) return settle(c, error);
  }
}

void accept_all(int listener, SSL_CTX* ctx) {
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) std::perror("openssl_epoll_echo: accept");
      return;
    }
    SSL* const ssl = SSL_new(ctx);
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
      ERR_clear_error();
      SSL_free(ssl);
      ::close(fd);
      continue;
    }
    SSL_set_accept_state(ssl);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;  // EPOLLOUT is ready at once: the first serve()
    ev.data.ptr = new Conn{fd, ssl, {}};
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  }
}

SSL_CTX* tls_context(const char* chain, const char* key) {
  SSL_CTX* const ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx, chain) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    std::fprintf(stderr, "openssl_epoll_echo: cannot set up TLS with %s and %s\n", chain, key);
    ERR_print_errors_fp(stderr);
    std::exit(1);
  }
  // SSL_MODE_RELEASE_BUFFERS: an idle connection keeps no record buffers (every TLS peer sets
  // it). Moving writes: a retried SSL_write's bytes live in `pending`, not where they first were.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  return ctx;
}

int listen_on(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    std::perror("openssl_epoll_echo: listen");
    std::exit(1);
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(ntohs(addr.sin_port)));
  std::fflush(stdout);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: openssl_epoll_echo PORT CERT_CHAIN.pem KEY.pem\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // the socket BIO writes with write(): no MSG_NOSIGNAL
  SSL_CTX* const ctx = tls_context(argv[2], argv[3]);
  const int listener = listen_on(static_cast<unsigned short>(std::atoi(argv[1])));
  epfd = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;    // level-triggered: accept_all() takes every pending connection anyway
  ev.data.ptr = nullptr;  // the listener
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
  epoll_event events[256];
  for (;;) {
    const int n = ::epoll_wait(epfd, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      if (auto* c = static_cast<Conn*>(events[i].data.ptr)) {
        serve(c);
      } else {
        accept_all(listener, ctx);
      }
    }
  }
}
