// SPDX-License-Identifier: MIT
// The TLS side of `sockserv bench`. The epoll loops of bench_load.cpp take a connection once its
// handshake is done: the handshake runs blocking here, under --connect-timeout, and the loop then
// makes the socket non-blocking and sends and receives through Socket::send/recv_into, which go
// through TLS when the socket carries it. --handshakes needs no event loop: a thread per client
// opens one connection at a time, as blocking code does, and the server's side of each
// connection (accept, handshake, one echo, close) is what is measured.
#include "bench_tls.hpp"

#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace sockserv::tool {

Socket connect_client(const BenchOptions& options, const Address& address,
                      const SSLSession* session) {
  Socket sock(address.family(), SOCK_STREAM);
  sock.settimeout(to_duration(options.connect_timeout));
  sock.connect(address);
  // Before the handshake: the client's Finished and the first message are small writes in a row.
  if (address.is_inet()) sock.set_nodelay(true);
  if (!options.tls) return sock;
  return options.tls->wrap_socket(std::move(sock), false, options.server_name, true, session);
}

void enable_read_ahead(const SSLContext& context) noexcept {
  // SSL_CTX_set_read_ahead() is a macro over SSL_CTX_ctrl(), looked up at run time: the tool
  // is not told at compile time whether sockserv was built with OpenSSL (it links libssl then).
  using Ctrl = long (*)(void*, int, long, void*);
  static const auto ctrl = reinterpret_cast<Ctrl>(::dlsym(RTLD_DEFAULT, "SSL_CTX_ctrl"));
  constexpr int set_read_ahead = 41;  // SSL_CTRL_SET_READ_AHEAD in <openssl/ssl.h>
  if (ctrl != nullptr && context.native_handle() != nullptr) {
    ctrl(context.native_handle(), set_read_ahead, 1, nullptr);
  }
}

namespace {

// What one --handshakes connection did.
struct Outcome {
  Clock::time_point start, echoed;
  bool resumed = false;
};

class HandshakeClient {
 public:
  HandshakeClient(const BenchOptions& options, const Address& address, std::size_t id)
      : options_(options),
        address_(address),
        id_(id),
        out_(options.size, '\0'),
        in_(options.size),
        close_wait_(to_duration(std::min(options.connect_timeout, 1.0))) {}

  // Connection number `k` of this client. Its message differs from every other connection's,
  // so an echo from the wrong connection fails the check. Throws.
  Outcome once(std::uint64_t k) {
    for (std::size_t j = 0; j < out_.size(); ++j) {
      out_[j] = static_cast<char>(((k * out_.size() + j + id_ * 61) % 251) * 7 + 3);
    }
    Outcome outcome;
    outcome.start = Clock::now();
    Socket sock =
        connect_client(options_, address_, options_.resume && session_ ? &session_ : nullptr);
    sock.sendall(out_);
    receive_echo(sock);
    outcome.echoed = Clock::now();
    if (std::memcmp(in_.data(), out_.data(), in_.size()) != 0) {
      throw std::runtime_error("the echo differs from the message");
    }
    if (const SSLObject* tls = ssl_object(sock)) {
      outcome.resumed = tls->session_reused();
      // The server's tickets came before the echo, so this session is the newest one.
      if (options_.resume) session_ = tls->session();
    }
    sock.graceful_close(close_wait_);
    return outcome;
  }

 private:
  // Reads the echo into in_, within --connect-timeout. A TLS 1.3 server sends its session tickets
  // when the handshake ends, and the echo just after: a server without TCP_NODELAY holds the echo
  // back (Nagle) until the tickets are acknowledged, and the client's delayed ACK takes 40 ms.
  // So before each wait the pending ACK goes out at once (TCP_QUICKACK acts once, on what has
  // arrived): the loop measures the server's CPU, not that timer (docs/BENCHMARKS.md, TLS).
  void receive_echo(Socket& sock) {
    sock.setblocking(false);
    const auto until = Clock::now() + to_duration(options_.connect_timeout);
    std::size_t got = 0;
    while (got < in_.size()) {
      std::error_code ec;
      const std::size_t n = sock.recv_into(std::span<char>(in_).subspan(got), ec);
      if (ec == std::errc::resource_unavailable_try_again) {
        if (address_.is_inet()) sock.setsockopt(IPPROTO_TCP, TCP_QUICKACK, 1);
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
        pollfd fd{sock.fileno(), POLLIN, 0};
        if (left.count() <= 0 || ::poll(&fd, 1, static_cast<int>(left.count())) == 0) {
          throw std::runtime_error("no echo within " + fixed(options_.connect_timeout, 1) + " s");
        }
        continue;
      }
      if (ec) throw std::system_error(ec, "recv");
      if (n == 0) throw std::runtime_error("the server closed the connection before the echo");
      got += n;
    }
  }

  const BenchOptions& options_;
  const Address& address_;
  std::size_t id_;
  std::string out_;
  std::vector<char> in_;
  std::chrono::nanoseconds close_wait_;
  SSLSession session_;  // --resume: the previous connection's
};

}  // namespace

WorkerResult run_handshake_worker(const BenchOptions& options, const Address& address,
                                  Shared& shared, std::size_t id) noexcept {
  WorkerResult result;
  const std::size_t n = options.connections;
  const std::uint64_t quota = options.messages > 0
                                  ? options.messages / n + (id < options.messages % n ? 1 : 0)
                                  : std::numeric_limits<std::uint64_t>::max();
  const auto fail = [&](const std::exception& e) {
    shared.fail("connection " + std::to_string(id) + " to " + address.to_string() + ": " +
                e.what());
  };
  try {
    HandshakeClient client(options, address, id);
    try {
      client.once(0);
    } catch (const std::exception& e) {
      fail(e);
    }
    shared.ready.count_down();
    shared.go.wait(false);
    try {
      for (std::uint64_t k = 1; k <= quota && !shared.failed; ++k) {
        if (Clock::now() >= shared.window_end) break;
        const Outcome o = client.once(k);
        if (o.echoed >= shared.window_start && o.echoed < shared.window_end) {
          result.latency.record(static_cast<std::uint64_t>((o.echoed - o.start).count()));
          ++result.messages;
          if (o.resumed) ++result.resumed;
        }
        result.last = o.echoed;
        shared.completed.fetch_add(1, std::memory_order_relaxed);
      }
    } catch (const std::exception& e) {
      fail(e);
    }
  } catch (const std::exception& e) {  // allocating the client's buffers failed
    fail(e);
    shared.ready.count_down();
    shared.go.wait(false);
  }
  ++shared.finished;
  shared.release.wait(false);
  return result;
}

}  // namespace sockserv::tool
