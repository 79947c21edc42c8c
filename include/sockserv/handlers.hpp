// SPDX-License-Identifier: MIT
// Request handlers: Python's BaseRequestHandler, StreamRequestHandler and DatagramRequestHandler.
//
//   class MyTCPHandler : public sockserv::StreamRequestHandler {
//    public:
//     using StreamRequestHandler::StreamRequestHandler;
//     void handle() override {
//       std::string line = rfile.readline();
//       wfile.write(upper(line));
//     }
//   };
//   sockserv::TCPServer server({"localhost", 9999}, sockserv::handler<MyTCPHandler>());
//
// One handler object per request, as in Python: per-request state lives in its members. The
// server runs setup() -> handle() -> finish(); finish() runs even when handle() throws, and not
// when setup() throws. Python's class attributes (rbufsize, timeout, ...) are members: set them
// in your constructor, or in setup() before calling the base class's setup().
//
// Ownership: a handler refers to the request, client address and server it was made for; it
// lives only during the request. Thread safety: one handler is used by one thread.
#pragma once

#include <sockserv/server.hpp>
#include <sockserv/socket_file.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sockserv {

class BaseRequestHandler {
 public:
  BaseRequestHandler(Request& req, const Address& client, BaseServer& owner) noexcept
      : request(req), client_address(client), server(owner) {}
  BaseRequestHandler(const BaseRequestHandler&) = delete;
  BaseRequestHandler& operator=(const BaseRequestHandler&) = delete;
  virtual ~BaseRequestHandler() = default;

  // May be overridden. All three do nothing at this level.
  virtual void setup() {}
  virtual void handle() {}
  virtual void finish() {}

  // setup(); handle(); finish() - finish() also when handle() throws (then the exception goes
  // on to the server's handle_error), not when setup() throws.
  void run();

  Request& request;
  const Address& client_address;
  BaseServer& server;
};

// Python's io.BytesIO, the file over one datagram: DatagramRequestHandler's rfile and wfile.
class BytesIO {
 public:
  BytesIO() = default;
  explicit BytesIO(std::string initial) noexcept : data_(std::move(initial)) {}

  // Up to `n` bytes from the current position (all that is left by default).
  std::string read(std::size_t n = std::string::npos);
  // One line with its '\n' (the last may lack it); "" at the end. At most max_len bytes.
  std::string readline(std::size_t max_len = std::string::npos);
  std::size_t write(std::string_view bytes);
  const std::string& getvalue() const noexcept { return data_; }

 private:
  std::string data_;
  std::size_t position_ = 0;
};

class StreamRequestHandler : public BaseRequestHandler {
 public:
  using BaseRequestHandler::BaseRequestHandler;

  // Applies timeout and disable_nagle_algorithm, then makes rfile and wfile.
  void setup() override;
  // Flushes wfile (a peer that already left is not an error here) and closes both files.
  void finish() override;

  // rfile's buffer size; negative means the default (8 KiB). 0 would mean unbuffered in
  // Python; here it reads in 1-byte steps.
  int rbufsize = -1;
  // wfile's buffer size; 0 (the default) sends every write() at once and whole. Above 0,
  // writes are held up to that many bytes and sent whenever rfile has to wait for the peer
  // (SocketFile::flush_before_receive): pipelined requests get their replies in one send.
  int wbufsize = 0;
  // Socket timeout for this connection (Python: a class attribute, None by default). When set,
  // it bounds every wait, idle or mid-request, replacing the server's connection_timeout and
  // idle_timeout for this connection.
  Timeout timeout;
  bool disable_nagle_algorithm = false;

  Socket& connection() noexcept { return request.socket(); }
  SocketFile rfile{request.socket()};
  SocketFile wfile{request.socket()};
};

class DatagramRequestHandler : public BaseRequestHandler {
 public:
  using BaseRequestHandler::BaseRequestHandler;

  void setup() override;
  // Sends what the handler wrote to wfile back to the client, only when it wrote something
  // (Python sends an empty datagram even then).
  void finish() override;

  BytesIO rfile;
  BytesIO wfile;
};

// A RequestHandlerFactory for a handler class: constructs Handler(request, client_address,
// server) and runs it. Python's `TCPServer(addr, MyHandler)` is `TCPServer(addr,
// handler<MyHandler>())`.
template <class Handler>
RequestHandlerFactory handler() {
  static_assert(std::is_base_of_v<BaseRequestHandler, Handler>,
                "handler<H>(): H must derive from BaseRequestHandler");
  return [](Request& request, const Address& client_address, BaseServer& server) {
    Handler h(request, client_address, server);
    h.run();
  };
}

// A RequestHandlerFactory from a function used as handle() of a Handler:
//   handler<StreamRequestHandler>([](StreamRequestHandler& self) {
//     self.wfile.write(self.rfile.readline());
//   })
template <class Handler, class Function>
RequestHandlerFactory handler(Function handle) {
  struct Adapter final : Handler {
    Adapter(Request& r, const Address& a, BaseServer& s, const Function& f)
        : Handler(r, a, s), f_(f) {}
    void handle() override { f_(static_cast<Handler&>(*this)); }
    const Function& f_;
  };
  // Called concurrently by a threading server, so the function is only ever used as const.
  return [handle = std::move(handle)](Request& request, const Address& client_address,
                                      BaseServer& server) {
    Adapter h(request, client_address, server, handle);
    h.run();
  };
}

}  // namespace sockserv
