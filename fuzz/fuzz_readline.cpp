// SPDX-License-Identifier: MIT
// SocketFile::readline over a real socket pair. The first byte picks max_len (0..79), the second
// the read buffer size (1..32 bytes, so recv() splits lines at input-chosen points); the rest is
// sent, the sender shuts down, and lines are read until "" (EOF) or line_too_long. Checked:
//
//   - the lines, concatenated, are exactly the bytes sent (or a prefix of them, on error);
//   - every line is 1..max_len bytes, holds '\n' only as its last byte, and only the last line
//     before EOF may lack it;
//   - line_too_long is raised only when no '\n' comes within the next max_len bytes.
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok, const char* property) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property violated: %s\n", property);
    std::abort();
  }
}

void check_line(std::string_view line, std::size_t max_len) {
  check(!line.empty() && line.size() <= max_len, "line length out of 1..max_len");
  check(line.find('\n') >= line.size() - 1, "a '\\n' inside a line");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_len = data[0] % 80;
  const std::size_t read_size = data[1] % 32 + 1;
  // Capped well below a socket buffer, so the whole input can be sent before reading starts.
  const std::string_view sent(reinterpret_cast<const char*>(data) + 2,
                              std::min<std::size_t>(size - 2, 32768));

  auto [writer, reader] = sockserv::socketpair();
  writer.sendall(sent);
  writer.shutdown(SHUT_WR);
  sockserv::SocketFile file(reader, read_size);

  std::size_t consumed = 0;
  try {
    for (;;) {
      const std::string line = file.readline(max_len);
      if (line.empty()) break;
      check_line(line, max_len);
      check(sent.substr(consumed, line.size()) == line, "a line differs from the bytes sent");
      consumed += line.size();
      check(line.back() == '\n' || consumed == sent.size(), "a line without '\\n' before EOF");
    }
    check(consumed == sent.size(), "readline returned \"\" before EOF");
  } catch (const sockserv::SocketError& e) {
    check(e.code() == sockserv::errc::line_too_long, "an unexpected error");
    const std::string_view rest = sent.substr(consumed);
    check(rest.size() >= max_len && rest.substr(0, max_len).find('\n') == std::string_view::npos,
          "line_too_long although a '\\n' came within max_len");
  }
  return 0;
}
