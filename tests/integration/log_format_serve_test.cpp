// SPDX-License-Identifier: MIT
// `sockserv serve --log-format json`: every line on stderr is one JSON object with exactly the
// keys time, level and message, as Python's json module reads it, and the events provoked here
// (a denied client, a timed-out client, a peer reset, the metrics address, the shutdown and the
// final counters) appear at their documented levels (docs/OPERATIONS.md, "Logs").
#include <sockserv/address.hpp>
#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#ifndef SOCKSERV_EXE
#error "SOCKSERV_EXE must name the sockserv program"
#endif

namespace sockserv {
namespace {

using namespace std::chrono_literals;

// Reads the log on stdin; fails (exit status 1, the reason on stderr) unless every line is a
// JSON object with exactly time, level and message, well typed, and each LEVEL:REGEX argument
// matches at least one line's level and message.
const char* const check_json_lines = R"(
import json, re, sys
wanted = [arg.split(':', 1) for arg in sys.argv[1:]]
found = set()
text = sys.stdin.buffer.read().decode('utf-8')  # invalid UTF-8 fails here
if not text.endswith('\n'):
    sys.exit('the log does not end with a newline: %r' % text[-200:])
for n, line in enumerate(text[:-1].split('\n'), 1):
    try:
        record = json.loads(line)
    except ValueError as e:
        sys.exit('line %d is not JSON (%s): %r' % (n, e, line))
    if not isinstance(record, dict) or sorted(record) != ['level', 'message', 'time']:
        sys.exit('line %d has not exactly time, level, message: %r' % (n, line))
    if not all(isinstance(value, str) for value in record.values()):
        sys.exit('line %d has a value that is not a string: %r' % (n, line))
    if not re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', record['time']):
        sys.exit('line %d: time %r' % (n, record['time']))
    if record['level'] not in ('debug', 'info', 'warning', 'error'):
        sys.exit('line %d: level %r' % (n, record['level']))
    for i, (level, pattern) in enumerate(wanted):
        if record['level'] == level and re.search(pattern, record['message']):
            found.add(i)
missing = [':'.join(w) for i, w in enumerate(wanted) if i not in found]
if missing:
    sys.exit('not logged: %s' % missing)
)";

test::CommandResult check_log(const std::string& log, const std::vector<std::string>& wanted) {
  std::vector<std::string> argv{test::python3(), "-c", check_json_lines};
  argv.insert(argv.end(), wanted.begin(), wanted.end());
  return test::run_command(argv, log, 30s);
}

// A client connected to `server` from the loopback address `source`.
Socket connect_from(const char* source, const Address& server) {
  Socket sock(AF_INET, SOCK_STREAM);
  sock.bind(Address::ipv4(source, 0));
  sock.settimeout(10s);
  sock.connect(server);
  return sock;
}

TEST(LogFormatServeTest, EveryStderrLineIsAJsonObjectAndTheEventsAreThere) {
  if (!test::have_program(test::python3())) GTEST_SKIP() << "no python3 to read the JSON with";
  test::Process proc({SOCKSERV_EXE, "serve", "--tcp", "127.0.0.1:0", "--mode", "threading",
                      "--handler", "upper", "--log-format", "json", "--deny", "127.0.0.2/32",
                      "--timeout", "0.5", "--stats", "30", "--metrics", "127.0.0.1:0"});
  const auto banner = proc.read_line(20s);
  ASSERT_TRUE(banner && banner->starts_with("listening on ")) << proc.err();
  const Address address = Address::parse(banner->substr(13));

  {  // denied: closed before anything is read; the client sees EOF (or a reset)
    auto sock = connect_from("127.0.0.2", address);
    try {
      EXPECT_EQ(sock.recv(16), "");
    } catch (const ConnectionError&) {
    }
  }
  {  // half a line, then silence: cut off after --timeout
    auto sock = connect_from("127.0.0.1", address);
    sock.sendall("no newline");
    EXPECT_EQ(sock.recv(16), "");
  }
  {  // a reset after a reply: the handler's next read fails, one info line
    auto sock = connect_from("127.0.0.1", address);
    sock.sendall("quote \" and backslash \\\n");
    EXPECT_EQ(test::recv_line(sock), "QUOTE \" AND BACKSLASH \\\n");
    sock.set_linger(0s);  // close() sends RST
  }
  proc.kill(SIGTERM);
  EXPECT_EQ(proc.wait(20s), 0) << proc.err();
  proc.read_to_eof(5s);

  const auto result =
      check_log(proc.err(), {R"(info:^metrics on 127\.0\.0\.1:\d+$)",
                             R"(warning:^refused 127\.0\.0\.2:\d+ .*denied)",
                             R"(info:^connection from 127\.0\.0\.1:\d+ timed out)",
                             R"(info:^connection from 127\.0\.0\.1:\d+ lost by the peer)",
                             "info:shutting down", R"(info:^stats .*accepted=)"});
  EXPECT_EQ(result.exit_code, 0) << result.err << "\nthe log:\n" << proc.err();
}

// The check above is worth something only if it fails on what is not one JSON object per line.
TEST(LogFormatServeTest, TheCheckRejectsWhatIsNotJsonLines) {
  if (!test::have_program(test::python3())) GTEST_SKIP() << "no python3 to read the JSON with";
  const std::string good = R"({"time":"2026-11-22T08:30:37.123Z","level":"info","message":"m"})";
  EXPECT_EQ(check_log(good + "\n", {"info:^m$"}).exit_code, 0);
  for (const std::string& bad : std::vector<std::string>{
           good + "\n2026-11-22T08:30:37.123Z INFO m\n",            // a text line
           good,                                                    // no final newline
           R"({"time":"2026-11-22T08:30:37.123Z","level":"info"})"  // a key missing
           "\n",
           R"({"time":"x","level":"info","message":"m"})"
           "\n",
           good + "\n" + good.substr(0, 30) + "\n",  // cut short
           "{\"time\":\"2026-11-22T08:30:37.123Z\",\"level\":\"info\",\"message\":\"a\nb\"}\n"}) {
    EXPECT_NE(check_log(bad, {}).exit_code, 0) << bad;
  }
  EXPECT_NE(check_log(good + "\n", {"warning:^m$"}).exit_code, 0);  // an event missing
}

}  // namespace
}  // namespace sockserv
