// SPDX-License-Identifier: MIT
#include "builtin_handlers.hpp"
#include "tls_options.hpp"

#include <sockserv/handlers.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <stdexcept>
#include <string>

namespace sockserv::tool {

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

std::string daytime() {
  // RFC 867 leaves the format open; this is the classic "Weekday, Month Day, Year HH:MM:SS-ZONE".
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char text[64];
  const auto n = std::strftime(text, sizeof text, "%A, %B %d, %Y %H:%M:%S-UTC\r\n", &utc);
  return std::string(text, n);
}

namespace {

// Credits a handler's byte counts to its server's stats when it ends, even by an exception.
struct ByteCounts {
  explicit ByteCounts(ServerStats& s) noexcept : stats(s) {}
  ByteCounts(const ByteCounts&) = delete;
  ByteCounts& operator=(const ByteCounts&) = delete;
  ~ByteCounts() {
    ServerStats::add(stats.bytes_in, in);
    ServerStats::add(stats.bytes_out, out);
  }
  ServerStats& stats;
  std::uint64_t in = 0;
  std::uint64_t out = 0;
};

RequestHandlerFactory stream_handler(std::string_view name) {
  if (name == "upper") {
    return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
      for (const auto& line : self.rfile.lines()) self.wfile.write(upper(line));
    });
  }
  if (name == "echo") {
    return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
      // On the request's socket, like the seed's MyTCPHandler (self.request.recv/sendall): a
      // message costs its two syscalls and no buffered-file layer, which with 50 handler
      // threads taking turns on a CPU was 1.5-2 % of the CPU per message (docs/BENCHMARKS.md).
      // setup() has applied the timeout; the byte counts go to the stats as rfile/wfile's would.
      // 16 KiB on the stack costs only the pages a message touches.
      // Every read is a wait for the client's next bytes, so it is under the idle timeout (a
      // timed socket still waits under its kernel timer: no extra syscall per message).
      Socket& sock = self.connection();
      const auto idle = self.request.idle_timeout();
      ByteCounts counts(self.server.stats);
      char chunk[16384];
      for (std::size_t n;
           (n = idle ? sock.recv_into_idle(chunk, *idle) : sock.recv_into(chunk)) > 0;) {
        counts.in += n;
        sock.sendall({chunk, n});
        counts.out += n;
      }
    });
  }
  if (name == "discard") {
    return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
      char chunk[16384];
      while (self.rfile.readinto1(chunk) > 0) {
      }
    });
  }
  if (name == "whoami") {
    return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
      for (const auto& line : self.rfile.lines()) {
        (void)line;
        self.wfile.write((self.connection().family() == AF_UNIX
                              ? self.request.peer_credentials().to_string()
                              : self.client_address.to_string()) +
                         "\n");
      }
    });
  }
  if (name == "daytime") {
    return handler<StreamRequestHandler>(
        [](StreamRequestHandler& self) { self.wfile.write(daytime()); });
  }
  if (name == "tlsinfo") {
    return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
      for (const auto& line : self.rfile.lines()) {
        (void)line;
        self.wfile.write(tls_info_line(self.connection()));
      }
    });
  }
  throw std::invalid_argument("unknown handler '" + std::string(name) + "'");
}

RequestHandlerFactory datagram_handler(std::string_view name) {
  if (name == "upper") {
    return handler<DatagramRequestHandler>(
        [](DatagramRequestHandler& self) { self.wfile.write(upper(self.rfile.read())); });
  }
  if (name == "echo") {
    return handler<DatagramRequestHandler>(
        [](DatagramRequestHandler& self) { self.wfile.write(self.rfile.read()); });
  }
  if (name == "discard") {
    return handler<DatagramRequestHandler>([](DatagramRequestHandler&) {});
  }
  if (name == "whoami") {
    return handler<DatagramRequestHandler>([](DatagramRequestHandler& self) {
      self.wfile.write(self.client_address.to_string() + "\n");
    });
  }
  if (name == "daytime") {
    return handler<DatagramRequestHandler>(
        [](DatagramRequestHandler& self) { self.wfile.write(daytime()); });
  }
  throw std::invalid_argument("unknown handler '" + std::string(name) + "'");
}

}  // namespace

RequestHandlerFactory builtin_handler(std::string_view name, bool datagram) {
  return datagram ? datagram_handler(name) : stream_handler(name);
}

}  // namespace sockserv::tool
