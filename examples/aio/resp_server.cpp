// SPDX-License-Identifier: MIT
// A small Redis-protocol server (PING, ECHO, GET, SET, DEL, INCR) on the event loop, for
// redis-cli and redis-benchmark. It shows the pipelined pattern: parse every request already
// buffered, write() each reply, and the replies go out in one send when the input runs dry.
//
//   $ aio_resp_server [HOST PORT]          (default: 127.0.0.1 6380)
//   $ redis-cli -p 6380 set greeting hello        ->  OK
//   $ redis-benchmark -p 6380 -t set,get -P 16 -q
//
// A malformed request gets "-ERR Protocol error: ..." and the connection is closed (as Redis
// does), with one line on stderr; every size is bounded (resp_protocol.hpp).
#include "resp_commands.hpp"
#include "resp_protocol.hpp"

#include <sockserv/aio/server.hpp>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

using sockserv::aio::AsyncTCPServer;
using sockserv::aio::Connection;
using sockserv::aio::Task;

namespace {

resp::Store store;  // one loop (the server's default) serves every client: no lock needed

Task<void> handle(Connection conn) {
  std::vector<std::string> args;
  std::string reply;
  for (bool quit = false; !quit;) {
    auto& input = conn.read_buffer();
    const resp::Parsed parsed = resp::parse_request(input.view(), args);
    if (parsed.status == resp::Status::incomplete) {
      // Any reply write() still holds goes out before this waits (Connection::write).
      if (!co_await conn.receive_more()) co_return;  // the client closed
      continue;
    }
    if (parsed.status == resp::Status::malformed) {
      std::cerr << "aio_resp_server: " << conn.peer_address() << ": " << parsed.error << "; closing"
                << std::endl;
      co_await conn.write("-ERR Protocol error: " + parsed.error + "\r\n");
      co_return;
    }
    input.consume(parsed.consumed);  // before write(): it asks what input is left
    if (args.empty()) continue;      // an empty inline line
    reply.clear();
    store.execute(args, reply, quit);
    // Held while more requests are buffered (a pipeline), sent together when none are.
    co_await conn.write(reply);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A start-up failure (a port in use, a bad host) is one line on stderr and exit status 1.
  try {
    const std::string host = argc > 2 ? argv[1] : "127.0.0.1";
    const auto port = static_cast<std::uint16_t>(argc > 2 ? std::atoi(argv[2]) : 6380);
    AsyncTCPServer server({host, port}, handle);
    server.connection_timeout = std::nullopt;  // Redis keeps idle clients (pools) forever
    server.disable_nagle_algorithm = true;     // replies are whole: send them at once
    std::cout << "listening on " << server.server_address << std::endl;
    server.serve_forever();
  } catch (const std::exception& e) {
    std::cerr << "aio_resp_server: " << e.what() << std::endl;
    return 1;
  }
}
