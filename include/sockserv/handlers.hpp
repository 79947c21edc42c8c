// SPDX-License-Identifier: MIT
/// @file
/// Request handlers: Python's BaseRequestHandler, StreamRequestHandler and DatagramRequestHandler.
///
/// ```
///   class MyTCPHandler : public sockserv::StreamRequestHandler {
///    public:
///     using StreamRequestHandler::StreamRequestHandler;
///     void handle() override {
///       std::string line = rfile.readline();
///       wfile.write(upper(line));
///     }
///   };
///   sockserv::TCPServer server({"localhost", 9999}, sockserv::handler<MyTCPHandler>());
/// ```
///
/// One handler object per request, as in Python: per-request state lives in its members. The
/// server runs setup() -> handle() -> finish(); finish() runs even when handle() throws, and not
/// when setup() throws. Python's class attributes (rbufsize, timeout, ...) are members: set them
/// in your constructor, or in setup() before calling the base class's setup().
///
/// Ownership: a handler refers to the request, client address and server it was made for; it
/// lives only during the request. Thread safety: one handler is used by one thread.
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

/// The base of every handler: one object per request, made by the server's factory, whose
/// run() calls setup(), handle() and finish(). An exception from them goes on to the server,
/// which reports a std::exception through handle_error() and goes on serving.
/// @threadsafety One handler is used by one thread (the request's).
/// @python socketserver.BaseRequestHandler
class BaseRequestHandler {
 public:
  /// Python's __init__(request, client_address, server), without the call to handle(): the
  /// factory calls run(). A subclass inherits it (`using BaseRequestHandler::BaseRequestHandler;`).
  BaseRequestHandler(Request& req, const Address& client, BaseServer& owner) noexcept
      : request(req), client_address(client), server(owner) {}
  /// Not copyable: a handler refers to its request.
  /// @{
  BaseRequestHandler(const BaseRequestHandler&) = delete;
  BaseRequestHandler& operator=(const BaseRequestHandler&) = delete;
  /// @}
  /// Handlers are used through this base.
  virtual ~BaseRequestHandler() = default;

  /// Called before handle(), to set up the request. May be overridden; does nothing here.
  /// @python socketserver.BaseRequestHandler.setup
  virtual void setup() {}
  /// Does the work of the request. May be overridden (it must be, to do anything); does nothing
  /// here.
  /// @python socketserver.BaseRequestHandler.handle
  virtual void handle() {}
  /// Called after handle(), even when it threw, to clean up. May be overridden; does nothing
  /// here.
  /// @python socketserver.BaseRequestHandler.finish
  virtual void finish() {}

  /// setup(); handle(); finish() - finish() also when handle() throws (then the exception goes
  /// on to the server's handle_error), not when setup() throws. Throws whatever those three
  /// throw.
  void run();

  /// The request: the connection, or the datagram and the server's socket.
  /// @python socketserver.BaseRequestHandler.request
  Request& request;
  /// The client's address.
  /// @python socketserver.BaseRequestHandler.client_address
  const Address& client_address;
  /// The server that accepted the request.
  /// @python socketserver.BaseRequestHandler.server
  BaseServer& server;
};

/// A file in memory over one datagram: DatagramRequestHandler's rfile and wfile. Reads and
/// writes move one position, as a file's do. Never throws (except std::bad_alloc).
/// @python io.BytesIO
class BytesIO {
 public:
  /// An empty file.
  BytesIO() = default;
  /// A file holding `initial`, positioned at its start.
  explicit BytesIO(std::string initial) noexcept : data_(std::move(initial)) {}

  /// Up to `n` bytes from the current position (all that is left by default).
  /// @python io.BytesIO.read
  std::string read(std::size_t n = std::string::npos);
  /// One line with its newline (the last may lack it); "" at the end. At most max_len bytes.
  /// @python io.BytesIO.readline
  std::string readline(std::size_t max_len = std::string::npos);
  /// Writes at the position (overwriting, then extending); returns bytes.size().
  /// @python io.BytesIO.write
  std::size_t write(std::string_view bytes);
  /// Everything the file holds, whatever the position.
  /// @python io.BytesIO.getvalue
  const std::string& getvalue() const noexcept { return data_; }

 private:
  std::string data_;
  std::size_t position_ = 0;
};

/// A handler for a stream request: rfile and wfile are buffered files over the connection.
/// @python socketserver.StreamRequestHandler
class StreamRequestHandler : public BaseRequestHandler {
 public:
  using BaseRequestHandler::BaseRequestHandler;

  /// Applies timeout and disable_nagle_algorithm, then makes rfile and wfile (and the servers'
  /// idle timeout, for rfile). May be extended (call StreamRequestHandler::setup()).
  /// @throws SocketError when a socket option cannot be set.
  /// @python socketserver.StreamRequestHandler.setup
  void setup() override;
  /// Flushes wfile (a peer that already left is not an error here), closes both files and adds
  /// their byte counts to the server's stats. May be extended.
  /// @throws TimeoutError or SocketError when the final flush fails otherwise.
  /// @python socketserver.StreamRequestHandler.finish
  void finish() override;

  /// rfile's buffer size; negative means the default (8 KiB). 0 would mean unbuffered in
  /// Python; here it reads in 1-byte steps.
  /// @python socketserver.StreamRequestHandler.rbufsize
  int rbufsize = -1;
  /// wfile's buffer size; 0 (the default) sends every write() at once and whole. Above 0,
  /// writes are held up to that many bytes and sent whenever rfile has to wait for the peer
  /// (SocketFile::flush_before_receive): pipelined requests get their replies in one send.
  /// @python socketserver.StreamRequestHandler.wbufsize
  int wbufsize = 0;
  /// Socket timeout for this connection (Python: a class attribute, None by default). When set,
  /// it bounds every wait, idle or mid-request, replacing the server's connection_timeout and
  /// idle_timeout for this connection.
  /// @python socketserver.StreamRequestHandler.timeout
  Timeout timeout;
  /// True sets TCP_NODELAY on the connection in setup().
  /// @python socketserver.StreamRequestHandler.disable_nagle_algorithm
  bool disable_nagle_algorithm = false;

  /// The connected socket (request.socket()).
  /// @python socketserver.StreamRequestHandler.connection
  Socket& connection() noexcept { return request.socket(); }
  /// The buffered reading file, made by setup().
  /// @python socketserver.StreamRequestHandler.rfile
  SocketFile rfile{request.socket()};
  /// The writing file, made by setup(): unbuffered unless wbufsize > 0.
  /// @python socketserver.StreamRequestHandler.wfile
  SocketFile wfile{request.socket()};
};

/// A handler for a datagram: rfile reads the datagram, and what the handler writes to wfile is
/// sent back to the client as one datagram.
/// @python socketserver.DatagramRequestHandler
class DatagramRequestHandler : public BaseRequestHandler {
 public:
  using BaseRequestHandler::BaseRequestHandler;

  /// Makes rfile over the datagram and counts its bytes. May be extended.
  /// @python socketserver.DatagramRequestHandler.setup
  void setup() override;
  /// Sends what the handler wrote to wfile back to the client, only when it wrote something
  /// (Python sends an empty datagram even then). May be extended.
  /// @throws TimeoutError or SocketError, as Socket::sendto.
  /// @python socketserver.DatagramRequestHandler.finish
  void finish() override;

  /// The datagram, as a file.
  /// @python socketserver.DatagramRequestHandler.rfile
  BytesIO rfile;
  /// The reply, sent by finish().
  /// @python socketserver.DatagramRequestHandler.wfile
  BytesIO wfile;
};

/// A RequestHandlerFactory for a handler class: constructs Handler(request, client_address,
/// server) and runs it. Python's `TCPServer(addr, MyHandler)` is `TCPServer(addr,
/// handler<MyHandler>())`.
/// @python passing the handler class as RequestHandlerClass
template <class Handler>
RequestHandlerFactory handler() {
  static_assert(std::is_base_of_v<BaseRequestHandler, Handler>,
                "handler<H>(): H must derive from BaseRequestHandler");
  return [](Request& request, const Address& client_address, BaseServer& server) {
    Handler h(request, client_address, server);
    h.run();
  };
}

/// A RequestHandlerFactory from a function used as handle() of a Handler:
///
/// ```
///   handler<StreamRequestHandler>([](StreamRequestHandler& self) {
///     self.wfile.write(self.rfile.readline());
///   })
/// ```
///
/// A threading server calls the factory from many threads at once, so `handle` must be safe to
/// call concurrently (it is only ever used as const).
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
