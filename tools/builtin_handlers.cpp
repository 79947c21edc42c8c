// SPDX-License-Identifier: MIT
#include "builtin_handlers.hpp"

#include <sockserv/handlers.hpp>

#include <algorithm>
#include <cctype>
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

RequestHandlerFactory stream_handler(std::string_view name) {
  if (name == "upper") {
    return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
      for (const auto& line : self.rfile.lines()) self.wfile.write(upper(line));
    });
  }
  if (name == "echo") {
    return handler<StreamRequestHandler>([](StreamRequestHandler& self) {
      // readinto1, not read1: read1 would allocate a string per message. 16 KiB on the stack
      // costs only the pages a message touches.
      char chunk[16384];
      for (std::size_t n; (n = self.rfile.readinto1(chunk)) > 0;) self.wfile.write({chunk, n});
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
        self.wfile.write(self.client_address.to_string() + "\n");
      }
    });
  }
  if (name == "daytime") {
    return handler<StreamRequestHandler>(
        [](StreamRequestHandler& self) { self.wfile.write(daytime()); });
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
