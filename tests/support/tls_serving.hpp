// SPDX-License-Identifier: MIT
// Helpers of the TLS tests that run `sockserv serve` as a process (tls_serve_test,
// tls_faults_test): the server process with its log, a descriptor count of another process, and
// a Python TLS client (Python's ssl module, an independent TLS implementation of the peer).
#pragma once

#include <sockserv/address.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sockserv::test {

// `EXE serve --tcp 127.0.0.1:0 --grace 0.5 ARGS...` (no --tcp of ours when ARGS has one), started
// and waited for ("listening on ADDRESS" on stdout). The destructor stops it (SIGTERM) if the test
// did not.
class ServeProcess {
 public:
  ServeProcess(const std::string& exe, const std::vector<std::string>& args)
      : process_(command(exe, args)) {
    using namespace std::chrono_literals;
    const auto line = process_.read_line(20s);
    if (line && line->starts_with("listening on ")) {
      address_ = Address::parse(line->substr(13));
    } else {
      ADD_FAILURE() << "no 'listening on' line; stderr: " << process_.err();
    }
  }
  ~ServeProcess() { stop(); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  bool started() const { return address_.has_value(); }
  const Address& address() const { return *address_; }
  std::string port() const { return std::to_string(address_->port()); }
  pid_t pid() const { return process_.pid(); }
  void signal(int sig) { process_.kill(sig); }

  // SIGTERM, then the exit status (nullopt: it had to be killed).
  std::optional<int> stop() {
    using namespace std::chrono_literals;
    if (stopped_) return status_;
    stopped_ = true;
    process_.kill(SIGTERM);
    process_.read_to_eof(10s);
    status_ = process_.wait(10s);
    return status_;
  }

  // The log (stderr) read so far; log() reads what has arrived first.
  const std::string& log() {
    using namespace std::chrono_literals;
    if (!stopped_) (void)process_.read_line(1ms);
    return process_.err();
  }
  std::size_t count_in_log(std::string_view text) {
    const auto& all = log();
    std::size_t n = 0;
    for (auto at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) ++n;
    return n;
  }
  // Reads the log until `text` is in it `times` times; false when `limit` passes first.
  bool wait_for_log(std::string_view text, std::size_t times = 1,
                    std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    using namespace std::chrono_literals;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (count_in_log(text) < times) {
      if (stopped_ || std::chrono::steady_clock::now() >= deadline) return false;
      (void)process_.read_line(20ms);
    }
    return true;
  }

 private:
  static std::vector<std::string> command(const std::string& exe,
                                          const std::vector<std::string>& args) {
    std::vector<std::string> argv{exe, "serve", "--grace", "0.5"};
    if (std::find(args.begin(), args.end(), "--tcp") == args.end()) {
      argv.insert(argv.end(), {"--tcp", "127.0.0.1:0"});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  Process process_;
  std::optional<Address> address_;
  bool stopped_ = false;
  std::optional<int> status_;
};

// Open descriptors of process `pid` (/proc/PID/fd); 0 when it is gone.
inline std::size_t count_fds_of(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return n;
}

// A TLS client on Python's ssl module: `python3 -c SCRIPT PORT KEY=VALUE...` connects to
// 127.0.0.1:PORT, verifies the server with ca=FILE for name=NAME (default localhost), sends
// send=TEXT (default "hello") and a newline, reads one line, and prints per connection
//   OK <reply> | reused=0|1 version=TLSv1.3 alpn=PROTO|- cn=<the server certificate's CN>
// or, when the handshake or the exchange fails (or the server closes first),
//   REFUSED <exception type> <message>
// Options: max=1.2 (TLS 1.2 at most), alpn=A,B, cert=FILE key=FILE (a client certificate),
// count=N connections, resume=1 (each connection offers the session of the last), pause=1 (reads
// a line on stdin before each connection after the first), loop=SECONDS (connections one after
// the other until then: "STARTED" after the first success, "FAIL ..." for each failure, then
// "SUMMARY ok=N failed=N cns=CN,CN"). Every socket has a 10 s timeout.
inline constexpr const char* kPythonTlsClient = R"PY(
import socket, ssl, sys, time
port = int(sys.argv[1])
o = dict(a.split("=", 1) for a in sys.argv[2:])
ctx = ssl.create_default_context(cafile=o.get("ca"))
if o.get("max") == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
if "alpn" in o:
    ctx.set_alpn_protocols(o["alpn"].split(","))
if "cert" in o:
    ctx.load_cert_chain(o["cert"], o["key"])

def once(session):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s = ctx.wrap_socket(raw, server_hostname=o.get("name", "localhost"), session=session)
    except BaseException:
        raw.close()
        raise
    with s:
        s.sendall(o.get("send", "hello").encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("EOF before a whole reply: %r" % reply)
            reply += chunk
        cn = dict(x[0] for x in s.getpeercert()["subject"]).get("commonName", "-")
        line = "OK %s | reused=%d version=%s alpn=%s cn=%s" % (
            reply.decode().strip(), s.session_reused, s.version(),
            s.selected_alpn_protocol() or "-", cn)
        session = s.session
        try:
            s.unwrap()
        except (OSError, ValueError):
            pass
    return line, session

if "loop" in o:
    end = time.monotonic() + float(o["loop"])
    ok, failed, cns = 0, 0, []
    while time.monotonic() < end:
        try:
            line, _ = once(None)
            ok += 1
            cn = line.rsplit("cn=", 1)[1]
            if cn not in cns:
                cns.append(cn)
            if ok == 1:
                print("STARTED", flush=True)
        except Exception as e:
            failed += 1
            print("FAIL", type(e).__name__, e, flush=True)
    print("SUMMARY ok=%d failed=%d cns=%s" % (ok, failed, ",".join(cns)), flush=True)
    sys.exit(0)
session = None
for i in range(int(o.get("count", "1"))):
    if i and "pause" in o:
        sys.stdin.readline()
    try:
        line, last = once(session)
        if "resume" in o:
            session = last
        print(line, flush=True)
    except Exception as e:
        print("REFUSED", type(e).__name__, str(e).replace("\n", " "), flush=True)
)PY";

inline std::vector<std::string> python_client_argv(const std::string& port,
                                                   const std::vector<std::string>& options) {
  std::vector<std::string> argv{python3(), "-c", kPythonTlsClient, port};
  argv.insert(argv.end(), options.begin(), options.end());
  return argv;
}

// Runs the Python client to completion; its stdout, one line per connection.
inline std::vector<std::string> python_client(const std::string& port,
                                              const std::vector<std::string>& options) {
  using namespace std::chrono_literals;
  const auto result = run_command(python_client_argv(port, options), {}, 30s);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (auto nl = result.out.find('\n'); nl != std::string::npos;
       start = nl + 1, nl = result.out.find('\n', start)) {
    lines.push_back(result.out.substr(start, nl - start));
  }
  return lines;
}

}  // namespace sockserv::test
