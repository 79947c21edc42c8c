// SPDX-License-Identifier: MIT
#include <sockserv/error.hpp>
#include <sockserv/handlers.hpp>

#include <algorithm>

namespace sockserv {

void BaseRequestHandler::run() {
  setup();
  try {
    handle();
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

std::string BytesIO::read(std::size_t n) {
  const auto take = std::min(n, data_.size() - position_);
  std::string out = data_.substr(position_, take);
  position_ += take;
  return out;
}

std::string BytesIO::readline(std::size_t max_len) {
  const auto nl = data_.find('\n', position_);
  const auto line_end = nl == std::string::npos ? data_.size() : nl + 1;
  return read(std::min(line_end - position_, max_len));
}

std::size_t BytesIO::write(std::string_view bytes) {
  // Writes at the position, overwriting and then extending, as a file does.
  const auto overlap = std::min(bytes.size(), data_.size() - position_);
  data_.replace(position_, overlap, bytes.substr(0, overlap));
  data_.append(bytes.substr(overlap));
  position_ += bytes.size();
  return bytes.size();
}

void StreamRequestHandler::setup() {
  auto& sock = connection();
  if (timeout) {
    // Python's attribute: every wait, idle or not, is bounded by it.
    sock.settimeout(timeout);
    if (request.idle_timeout()) request.set_idle_timeout(timeout);
  }
  if (disable_nagle_algorithm) sock.set_nodelay(true);
  const auto read_size = rbufsize < 0 ? SocketFile::default_buffer_size
                                      : static_cast<std::size_t>(std::max(rbufsize, 1));
  rfile = SocketFile(sock, read_size);
  if (request.idle_timeout()) rfile.set_idle_timeout(*request.idle_timeout());
  wfile = SocketFile(sock, SocketFile::default_buffer_size, static_cast<std::size_t>(wbufsize));
  // A buffered wfile is flushed whenever rfile must wait for the peer: pipelined replies go out
  // together, and a reply never waits in the buffer while the peer waits for it.
  if (wbufsize > 0) rfile.flush_before_receive(&wfile);
}

void StreamRequestHandler::finish() {
  try {
    if (!wfile.closed()) wfile.flush();
  } catch (const ConnectionError&) {
    // The client left before reading everything (Python ignores socket.error here too).
  }
  wfile.close();
  rfile.close();
  ServerStats::add(server.stats.bytes_in, rfile.bytes_received());
  ServerStats::add(server.stats.bytes_out, wfile.bytes_sent());
}

void DatagramRequestHandler::setup() {
  rfile = BytesIO(request.packet());
  ServerStats::add(server.stats.bytes_in, request.packet().size());
}

void DatagramRequestHandler::finish() {
  if (wfile.getvalue().empty()) return;
  request.socket().sendto(wfile.getvalue(), client_address);
  ServerStats::add(server.stats.bytes_out, wfile.getvalue().size());
}

}  // namespace sockserv
