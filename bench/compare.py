#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs sockserv's servers and its peers' echo servers under the same load, on the same machine,
and prints (or writes into docs/BENCHMARKS.md) one Markdown comparison.

    bench/compare.py [--build-dir build/release] [--repeats 3] [--duration 3] [--write]
    bench/compare.py --quick                # one repeat of one second per cell: a smoke run
    bench/compare.py --tls [--write]        # the TLS servers instead (about 5 minutes)
    bench/compare.py --udp [--write]        # the UDP echo servers instead (about 2 minutes)
    bench/compare.py --from-raw FILE --plot DIR   # SVG charts of a recorded run (bench/charts.py)
    bench/run.sh ...                        # bootstrap + build + this script

Nothing is built here: the build directory must hold tools/sockserv and bench/peers/*.

How one cell is measured: the server starts pinned to CPU 0 (taskset) and prints "listening on
ADDR"; `sockserv bench ADDR ... --server-pid PID --json`, pinned to CPU 1, loads it for a warm-up
and then --duration seconds and reports messages/s, latency percentiles, the server's CPU time
per message (from /proc/PID/stat) and its memory; the server is stopped. Every server runs every
scenario once per repeat (servers interleaved, their order rotated between repeats), each cell is
the median of its repeats, and ratios to the epoll ceiling are taken within one repeat before the
median is taken. Cells that make no sense (a server that serves one connection at a time, given
fifty) are marked n/a with the reason.

--tls compares the TLS servers (sockserv's async and threading modes, bench/peers' OpenSSL + epoll
ceiling, Asio's ssl::stream and Python's ssl in threads and asyncio) the same way, with an ECDSA
P-256 and an RSA-2048 certificate made by the openssl command in a temporary directory: server
CPU per full handshake (each certificate) and per resumed one (`sockserv bench --tls
--handshakes [--resume]`), per 64-byte ping-pong message, 16 KiB bulk throughput, and memory per
idle TLS connection; ratios to the ceiling and to Asio; and the issue's targets, met or missed.
Its block goes between the compare-tls markers of docs/BENCHMARKS.md.

--udp compares UDP echo servers (sockserv serve --udp in async, sync and threading modes, a
hand-written recvmmsg/sendmmsg loop as the ceiling, libuv with UV_UDP_RECVMMSG, Python's
socketserver.UDPServer) under bench/peers/udp_load: 50 sockets with one 64-byte datagram in flight
each (server CPU per datagram), then a burst of 10,000 sent without pause (datagrams lost). Its
block goes between the compare-udp markers.
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import signal
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CEILING = "epoll (ceiling)"
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"
HELD = 10_000


def servers(build, nproc):
    """(name, command) of every server, each taking the echo role on 127.0.0.1, port 0."""
    tool = os.path.join(build, "tools", "sockserv")
    peers = os.path.join(build, "bench", "peers")
    pysrc = os.path.join(ROOT, "bench", "peers")

    def mode(m, *extra):
        # --timeout 0: no request timeout, like every peer (the idle timeout, 600 s, stays: it is
        # what a user who passes --timeout 0 gets); the "defaults" rows run the command as it
        # comes (--timeout 30 --idle-timeout 600).
        return [tool, "serve", "--mode", m, "--timeout", "0", *extra, "--handler", "echo",
                "--tcp", "127.0.0.1:0"]

    return [
        ("sockserv sync", mode("sync")),
        # The default caps (threading 1024 requests, forking 40 children) would make the
        # 10,000 held and the 50-connection cells wait; raised, as a deployment would.
        ("sockserv threading", mode("threading", "--max-connections", "16384")),
        # At the command's defaults (a 60 s timeout: kernel timers, ADR 0004), as users run it.
        ("sockserv threading, defaults", [tool, "serve", "--mode", "threading",
                                          "--max-connections", "16384", "--handler", "echo",
                                          "--tcp", "127.0.0.1:0"]),
        # --pool 64: the default 16 workers would leave 34 of the 50 connections waiting.
        ("sockserv pool, defaults", [tool, "serve", "--mode", "pool", "--pool", "64",
                                     "--handler", "echo", "--tcp", "127.0.0.1:0"]),
        ("sockserv forking", mode("forking", "--max-connections", "64")),
        ("sockserv async ×1", mode("async", "--threads", "1")),
        (f"sockserv async ×{nproc}", mode("async", "--threads", str(nproc))),
        # The other way to spread connections over loops: a SO_REUSEPORT socket per loop.
        (f"sockserv async ×{nproc}, listener per loop",
         mode("async", "--threads", str(nproc), "--listener-per-loop")),
        ("sockserv async ×1, defaults", [tool, "serve", "--mode", "async", "--threads", "1",
                                          "--handler", "echo", "--tcp", "127.0.0.1:0"]),
        # The io_uring backend against the default epoll one (env execs the server: same PID).
        ("sockserv async ×1, io_uring",
         ["/usr/bin/env", "SOCKSERV_POLLER=io_uring", *mode("async", "--threads", "1")]),
        # The same ring without SINGLE_ISSUER | DEFER_TASKRUN (the kernel's completion work then
        # runs at every syscall, not batched at the wait): what those flags are worth.
        ("sockserv async ×1, io_uring, COOP_TASKRUN",
         ["/usr/bin/env", "SOCKSERV_POLLER=io_uring", "SOCKSERV_URING_NO_DEFER=1",
          *mode("async", "--threads", "1")]),
        ("Asio (coroutines)", [os.path.join(peers, "asio_echo"), "0"]),
        ("libuv", [os.path.join(peers, "libuv_echo"), "0"]),
        ("thread per connection", [os.path.join(peers, "thread_per_conn_echo"), "0"]),
        ("Python ThreadingTCPServer", [sys.executable, os.path.join(pysrc, "py_threading_echo.py"), "0"]),
        ("Python asyncio", [sys.executable, os.path.join(pysrc, "py_asyncio_echo.py"), "0"]),
        (CEILING, [os.path.join(peers, "epoll_echo"), "0"]),
    ]


# (key, title, `sockserv bench` arguments)
SCENARIOS = [
    ("pp1", "64 B ping-pong, 50 connections, depth 1", ["-c", "50", "-s", "64", "-p", "1"]),
    ("pp16", "64 B ping-pong, 50 connections, depth 16", ["-c", "50", "-s", "64", "-p", "16"]),
    ("lat", "1 connection ping-pong (latency)", ["-c", "1", "-s", "64", "-p", "1"]),
    ("bulk", "16 KiB bulk stream, both directions, 1 connection",
     ["--bulk", "-c", "1", "-s", "16384", "-p", "64"]),
    ("bulk10", "16 KiB bulk stream, both directions, 10 connections",
     ["--bulk", "-c", "10", "-s", "16384", "-p", "64"]),
    ("hold", f"{HELD:,} held connections (server memory per connection)",
     ["--hold", "-c", str(HELD), "-s", "64", "--connect-concurrency", "64"]),
]


def not_applicable(server, scenario):
    """Why a cell is skipped, or None."""
    many = scenario in ("pp1", "pp16", "bulk10", "hold")
    if server == "sockserv sync" and many:
        return "sync mode serves one connection at a time: the others would wait for it to close"
    if server == "sockserv pool, defaults" and scenario == "hold":
        return f"a pool of 64 threads serves 64 connections at a time, not {HELD:,}"
    if server == "sockserv forking" and scenario == "hold":
        return f"a process per connection: {HELD:,} processes"
    if server == "Python ThreadingTCPServer" and scenario == "hold":
        return f"{HELD:,} Python threads: left out to bound the run"
    return None


# ---- TLS (--tls) -------------------------------------------------------------------------------

TLS_CEILING = "OpenSSL + epoll (ceiling)"
TLS_REFERENCE = "Asio ssl::stream"
TLS_BEGIN, TLS_END = "<!-- compare-tls:begin -->", "<!-- compare-tls:end -->"
CERT, KEY = "@CERT@", "@KEY@"  # in a TLS server's command: the scenario's certificate and key


def tls_servers(build):
    """(name, command) of every TLS server; CERT and KEY stand for the certificate's files."""
    tool = os.path.join(build, "tools", "sockserv")
    peers = os.path.join(build, "bench", "peers")
    pysrc = os.path.join(ROOT, "bench", "peers")
    tls = ["--tls-cert", CERT, "--tls-key", KEY]

    def mode(m, *extra):
        return [tool, "serve", "--mode", m, "--timeout", "0", *extra, "--handler", "echo",
                "--tcp", "127.0.0.1:0", *tls]

    return [
        ("sockserv async ×1", mode("async", "--threads", "1")),
        ("sockserv threading", mode("threading", "--max-connections", "16384")),
        # The CLI's defaults: a loop per core (both on the one server CPU), --timeout 30,
        # --idle-timeout 600 (ADR 0006).
        ("sockserv async, defaults", [tool, "serve", "--mode", "async", "--handler", "echo",
                                      "--tcp", "127.0.0.1:0", *tls]),
        (TLS_REFERENCE, [os.path.join(peers, "asio_ssl_echo"), "0", CERT, KEY]),
        ("Python ThreadingTCPServer + ssl",
         [sys.executable, os.path.join(pysrc, "py_ssl_threading_echo.py"), "0", CERT, KEY]),
        ("Python asyncio + ssl",
         [sys.executable, os.path.join(pysrc, "py_ssl_asyncio_echo.py"), "0", CERT, KEY]),
        (TLS_CEILING, [os.path.join(peers, "openssl_epoll_echo"), "0", CERT, KEY]),
    ]


def tls_scenarios(held):
    """(key, title, `sockserv bench` arguments, certificate) of the TLS comparison."""
    clients = ["--handshakes", "-c", "4", "-s", "64"]  # 4 blocking clients: a handshake each
    return [
        ("hs_ec", "Full handshakes, ECDSA P-256 certificate (a new connection per message)",
         clients, "ec"),
        ("hs_rsa", "Full handshakes, RSA-2048 certificate", clients, "rsa"),
        ("hs_resume", "Resumed handshakes (TLS 1.3 session tickets, ECDSA certificate)",
         [*clients, "--resume"], "ec"),
        ("pp", "64 B ping-pong over TLS, 50 connections, depth 1",
         ["-c", "50", "-s", "64", "-p", "1"], "ec"),
        ("bulk", "16 KiB bulk stream over TLS, both directions, 1 connection",
         ["--bulk", "-c", "1", "-s", "16384", "-p", "64"], "ec"),
        ("hold", f"{held:,} idle TLS connections (server memory per connection)",
         ["--hold", "-c", str(held), "-s", "64", "--connect-concurrency", "64", "-t", "4"], "ec"),
    ]


def make_certificates(directory):
    """A self-signed ECDSA P-256 and RSA-2048 certificate for 127.0.0.1, made with the openssl
    command: {"ec": (cert, key), "rsa": (cert, key)}."""
    certs = {}
    for name, key_args in (("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                           ("rsa", ["-newkey", "rsa:2048"])):
        cert, key = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.key")
        subprocess.run(["openssl", "req", "-x509", *key_args, "-nodes", "-keyout", key, "-out",
                        cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
        certs[name] = (cert, key)
    return certs


class Suite:
    """One comparison: its scenarios, its ceiling, the cells it skips, and how a cell's server
    command and `sockserv bench` arguments are completed."""

    def __init__(self, scenarios, ceiling, skip, reference=None, certs=None):
        self.scenarios, self.ceiling, self.skip = scenarios, ceiling, skip
        self.reference = reference  # a peer every row is also compared with, per repeat
        self.certs = certs          # TLS: {"ec"|"rsa": (cert, key)}

    def keys(self):
        return [s[0] for s in self.scenarios]

    def not_applicable(self, server, key):
        return self.skip(server, key)

    def prepare(self, key, command, bench_args):
        if not self.certs:
            return command, bench_args
        kind_of_cert = next(s[3] for s in self.scenarios if s[0] == key)
        cert, keyfile = self.certs[kind_of_cert]
        command = [cert if c == CERT else keyfile if c == KEY else c for c in command]
        return command, ["--tls", "--cafile", cert, *bench_args]


def tls_not_applicable(held):
    def skip(server, scenario):
        if server == "Python ThreadingTCPServer + ssl" and scenario == "hold":
            return f"{held:,} Python threads: left out to bound the run"
        return None
    return skip


def busy_cpu_seconds():
    """CPU time the whole machine has spent busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_quiet(limit):
    """Waits up to `limit` seconds for the machine to be idle (under a quarter of a core busy)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = busy_cpu_seconds()
        time.sleep(0.5)
        if (busy_cpu_seconds() - before) / 0.5 < 0.25:
            return


NICE = 0  # --nice: the priority of the servers and the load generator


def raise_nofile():
    """preexec_fn of the servers and the generator: all descriptors, and --nice. With the
    kernel's autogroups on, a nice value only ranks processes within their session's group, so
    the group (the server's own session, or this script's) gets the same nice value."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if NICE:
        os.nice(NICE)
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(NICE))
        except OSError:  # no autogroups, or not permitted
            pass


class Server:
    """One server process, pinned to CPU 0, from start to a stop that always happens."""

    def __init__(self, command, log):
        self.log = log
        self.proc = subprocess.Popen(["taskset", "-c", "0", *command], stdout=subprocess.PIPE,
                                     stderr=log, stdin=subprocess.DEVNULL, preexec_fn=raise_nofile,
                                     start_new_session=True)
        self.address = self._wait_listening(10.0)

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                line += chunk
                match = re.search(rb"listening on (\S+)\n", line)
                if match:
                    return match.group(1).decode()
        self.stop()
        raise RuntimeError(f"server did not say 'listening on' within {timeout} s")

    def exited(self, block=False):
        """True once the server has exited; it stays a zombie (not reaped) so its id stays ours."""
        flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
        return os.waitid(os.P_PID, self.proc.pid, flags) is not None

    def stop(self):
        if self.proc.returncode is None:
            if not self.exited():
                self.proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 5
                while not self.exited() and time.monotonic() < deadline:
                    time.sleep(0.02)
                if not self.exited():
                    self.proc.kill()
                    self.exited(block=True)
            # Children a forking server left behind are in its session's process group, whose id
            # is the server's own pid: still ours while the server is an unreaped zombie.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
        self.proc.stdout.close()


def run_cell(args, command, bench_args, logdir, label):
    """One measurement: a dict from `sockserv bench --json`, or {'error': text}."""
    tool = os.path.join(args.build_dir, "tools", "sockserv")
    logpath = os.path.join(logdir, re.sub(r"[^A-Za-z0-9]+", "_", label) + ".log")
    with open(logpath, "ab") as log:
        try:
            server = Server(command, log)
        except (OSError, RuntimeError) as e:
            return {"error": f"start: {e}"}
        try:
            hold = "--hold" in bench_args
            timing = (["--hold-seconds", str(args.hold_seconds)] if hold else
                      ["--duration", str(args.duration), "--warmup", str(args.warmup)])
            cmd = ["taskset", "-c", "1", tool, "bench", server.address, *bench_args, *timing,
                   "--server-pid", str(server.proc.pid), "--json", "--quiet"]
            limit = args.duration + args.warmup + args.hold_seconds + 90
            # The CPU time other programs took meanwhile: the machine's busy time less ours.
            before = (busy_cpu_seconds(), process_cpu_seconds(server.proc.pid),
                      children_cpu_seconds(), time.monotonic())
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit,
                                  preexec_fn=raise_nofile)
            after = (busy_cpu_seconds(), process_cpu_seconds(server.proc.pid),
                     children_cpu_seconds(), time.monotonic())
            d = [a - b for a, b in zip(after, before)]
            other_cores = max(0.0, d[0] - d[1] - d[2]) / d[3]
            if server.exited():
                return {"error": f"the server died during the run (see {logpath})"}
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
                return {"error": lines[-1]}
            cell = json.loads(done.stdout.strip().splitlines()[-1])
            cell["other_cores"] = round(other_cores, 3)
            return cell
        except subprocess.TimeoutExpired:
            return {"error": "the load generator did not finish in time"}
        finally:
            server.stop()


def measure(args, server_list, logdir, suite):
    """results[repeat][scenario][server] = dict."""
    results = []
    cells = sum(1 for s in server_list for k in suite.keys() if not suite.not_applicable(s[0], k))
    count, started = 0, time.monotonic()
    for repeat in range(args.repeats):
        shift = repeat % len(server_list)
        order = server_list[shift:] + server_list[:shift]  # interleaved, rotated each repeat
        per_scenario = {}
        for key, _, bench_args, *_ in suite.scenarios:
            per_server = per_scenario.setdefault(key, {})
            for name, command in order:
                if suite.not_applicable(name, key):
                    continue
                count += 1
                if args.wait_quiet:
                    wait_quiet(args.wait_quiet)
                server_command, cell_args = suite.prepare(key, command, bench_args)
                cell = run_cell(args, server_command, cell_args, logdir, f"{name}-{key}")
                per_server[name] = cell
                note = cell.get("error") or summary_of(key, cell)
                print(f"[{count}/{cells * args.repeats} {time.monotonic() - started:5.0f} s] "
                      f"repeat {repeat + 1} {key:4} {name:28} {note}", file=sys.stderr, flush=True)
        results.append(per_scenario)
    return results


def summary_of(key, cell):
    others = f", others {fmt(cell.get('other_cores'), 2)} cores"
    if key == "hold":
        return (f"{fmt(cell.get('server_kib_per_conn'), 2)} KiB/conn, "
                f"connect {fmt(cell.get('connect_s'), 2)} s" + others)
    if cell.get("mode") in ("handshakes", "resume"):
        return (f"{fmt(cell.get('msgs_per_s'))} handshakes/s, server "
                f"{fmt(cell.get('server_cpu_us_per_msg'), 1)} µs/handshake, resumed "
                f"{fmt((cell.get('resumed_fraction') or 0) * 100)} %" + others)
    return (f"{fmt(cell.get('msgs_per_s'))} msg/s, server "
            f"{fmt(cell.get('server_cpu_us_per_msg'), 2)} µs/msg, p99 {fmt(cell.get('p99_us'))} µs"
            + others)


# ---- Aggregation -------------------------------------------------------------------------------

METRICS = {  # scenario kind -> the per-cell numbers kept
    "load": ["msgs_per_s", "mb_per_s", "server_cpu_us_per_msg", "p50_us", "p99_us", "p999_us",
             "server_rss_kib", "client_cpu_us_per_msg"],
    "hold": ["server_kib_per_conn", "server_rss_before_kib", "server_rss_held_kib", "connect_s",
             "server_cpu_us_per_conn"],
    # --handshakes: a "message" is a connection (connect, handshake, one echo, close)
    "handshake": ["msgs_per_s", "server_cpu_us_per_msg", "p50_us", "p99_us", "server_rss_kib",
                  "client_cpu_us_per_msg", "resumed_fraction"],
}
RATIOS = {"load": [("msgs_per_s", "tput_ratio"), ("server_cpu_us_per_msg", "cpu_ratio"),
                   ("p99_us", "p99_ratio")],
          "hold": [("server_kib_per_conn", "mem_ratio")],
          "handshake": [("msgs_per_s", "tput_ratio"), ("server_cpu_us_per_msg", "cpu_ratio"),
                        ("p99_us", "p99_ratio")]}
# Ratios to the suite's reference peer (TLS: Asio), per repeat like those to the ceiling.
REF_RATIOS = {"load": [("server_cpu_us_per_msg", "ref_cpu_ratio")],
              "hold": [("server_kib_per_conn", "ref_mem_ratio")],
              "handshake": [("server_cpu_us_per_msg", "ref_cpu_ratio")]}


def kind(key):
    return "hold" if key == "hold" else "handshake" if key.startswith("hs_") else "load"


def per_repeat_ratios(results, cells, key, metric, other):
    """cell[metric] / other's cell[metric] in the same repeat, for every repeat that has both."""
    out = []
    for r, c in zip(results, cells):
        ref = r[key].get(other, {})
        if "error" not in c and c.get(metric) and ref.get(metric):
            out.append(c[metric] / ref[metric])
    return out


def aggregate(results, names, suite):
    """table[scenario][server] = medians (and ratios taken per repeat), or {'error'|'na': text}."""
    table = {}
    for key in suite.keys():
        rows = table.setdefault(key, {})
        for name in names:
            reason = suite.not_applicable(name, key)
            if reason:
                rows[name] = {"na": reason}
                continue
            cells = [r[key].get(name, {"error": "missing"}) for r in results]
            good = [c for c in cells if "error" not in c]
            if not good:
                rows[name] = {"error": cells[0]["error"]}
                continue
            row = {m: median([c.get(m) for c in good]) for m in METRICS[kind(key)]}
            for metric, ratio in RATIOS[kind(key)]:
                row[ratio] = median(per_repeat_ratios(results, cells, key, metric, suite.ceiling))
            if suite.reference:
                for metric, ratio in REF_RATIOS[kind(key)]:
                    row[ratio] = median(per_repeat_ratios(results, cells, key, metric,
                                                          suite.reference))
            row["repeats"] = len(good)
            rows[name] = row
    return table


def paired(results, a, b, suite):
    """Lines comparing server a with server b, repeat by repeat: per scenario, the median and the
    range of a's cost (CPU per message, memory per connection) over b's in the same repeat, and in
    how many repeats a cost no more. A target such as "at least as efficient as" is judged on these
    ratios, as the spread between repeats on a shared machine exceeds most differences."""
    lines = [f"Paired: {a} / {b}, per repeat (< 1: {a} costs less)", ""]
    lines += ["| scenario | metric | median | min | max | repeats a ≤ b |",
              "|---|---|---:|---:|---:|---:|"]
    for key, title, *_ in suite.scenarios:
        metric = "server_kib_per_conn" if kind(key) == "hold" else "server_cpu_us_per_msg"
        ratios = []
        for r in results:
            ca, cb = r.get(key, {}).get(a, {}), r.get(key, {}).get(b, {})
            if ca.get(metric) and cb.get(metric):
                ratios.append(ca[metric] / cb[metric])
        if ratios:
            wins = sum(1 for x in ratios if x <= 1.0)
            lines.append(f"| {title} | {metric} | {median(ratios):.3f} | {min(ratios):.3f} | "
                         f"{max(ratios):.3f} | {wins} of {len(ratios)} |")
    return "\n".join(lines) + "\n"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---- Markdown ----------------------------------------------------------------------------------

def fmt(value, digits=0, suffix=""):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def machine_description():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for pkg in ("libasio-dev", "libuv1-dev"):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                               text=True).stdout.strip()
            if v:
                versions.append(f"{pkg} {v}")
        except OSError:
            pass
    try:
        commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return model, versions, commit


def cell_text(row, render):
    if "na" in row:
        return "n/a"
    if "error" in row:
        return "error"
    return render(row)


def other_load(results):
    values = sorted(c["other_cores"] for r in results for rows in r.values()
                    for c in rows.values() if "other_cores" in c)
    if not values:
        return "unknown"
    return (f"median {statistics.median(values):.2f}, max {values[-1]:.2f} of a core "
            f"over {len(values)} cells")


def markdown(args, table, names, started, load_before, load_after, others):
    model, versions, commit = machine_description()
    commit = args.label or commit
    scenarios = [sc for sc in SCENARIOS if sc[0] in table]  # --scenarios may leave some out
    out = [BEGIN, "",
           "## Echo servers compared (`bench/compare.py`)", "",
           f"Machine: {os.cpu_count()} × {model}, Linux {platform.release()}, "
           f"Python {platform.python_version()}; {', '.join(versions) or 'peer versions unknown'}. "
           f"sockserv {commit or 'unknown commit'}.",
           f"Run {started:%Y-%m-%d %H:%M} UTC: {args.repeats} repeat(s), {args.duration} s per cell "
           f"after {args.warmup} s of warm-up ({HELD:,} held for {args.hold_seconds} s), servers "
           f"interleaved; median of the repeats. Server on CPU 0, `sockserv bench` on CPU 1 "
           f"(`taskset`){f', both at nice {args.nice}' if args.nice else ''}. Load average "
           f"before/after: {load_before:.2f} / {load_after:.2f}; CPU "
           f"taken by other programs during the cells: {others}.",
           "",
           "Each ratio is to the hand-written epoll loop (the ceiling), taken within one repeat, "
           "then the median. Server CPU µs/msg is the CPU time of the server's threads and "
           "children over the measured window divided by the messages echoed in it; it ranks "
           "servers even when the two cores saturate together. p99 is the round trip of one "
           "message. sockserv runs with `--timeout 0` (no peer has timeouts) except in the "
           "rows marked defaults (the command's: `--timeout 30 --idle-timeout 600`), threading with `--max-connections 16384` and "
           "forking with `--max-connections 64` (their defaults, 1024 requests and 40 children, "
           "would leave connections waiting); the async ×N row runs its N loops on the one "
           "server CPU.", ""]
    out += ["### Summary: server CPU per message (µs, and × ceiling; memory: KiB per held "
            "connection)", ""]
    short = {"pp1": "64 B ×50 depth 1", "pp16": "64 B ×50 depth 16", "lat": "1 conn latency",
             "bulk": "16 KiB bulk", "bulk10": "16 KiB bulk ×10",
             "hold": f"{HELD // 1000}k held KiB/conn"}
    header = "| server | " + " | ".join(short[k] for k, _, _ in scenarios) + " |"
    out += [header, "|---|" + "---:|" * len(scenarios)]
    for name in names:
        cells = []
        for key, _, _ in scenarios:
            row = table[key][name]
            if kind(key) == "hold":
                cells.append(cell_text(row, lambda r: f"{fmt(r['server_kib_per_conn'], 2)} "
                                                      f"({ratio(r['mem_ratio'])})"))
            else:
                cells.append(cell_text(row, lambda r: f"{fmt(r['server_cpu_us_per_msg'], 2)} "
                                                      f"({ratio(r['cpu_ratio'])})"))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    for key, title, bench_args in scenarios:
        out += ["", f"### {title}", "", f"`sockserv bench ADDR {' '.join(bench_args)}`", ""]
        if kind(key) == "hold":
            out += ["| server | KiB/conn | × ceiling | RSS before (MiB) | RSS held (MiB) | "
                    "connect+echo (s) | server CPU µs/conn |", "|---|---:|---:|---:|---:|---:|---:|"]
        else:
            out += ["| server | msgs/s | × ceiling | MB/s | server CPU µs/msg | × ceiling | "
                    "p50 µs | p99 µs | × ceiling | server RSS (MiB) |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        notes = []
        for name in names:
            row = table[key][name]
            if "na" in row or "error" in row:
                text = row.get("na") or row.get("error")
                notes.append(f"{name}: {text}")
                cols = 6 if kind(key) == "hold" else 9
                out.append(f"| {name} | " + " | ".join(["n/a" if "na" in row else "error"]
                                                       + [""] * (cols - 1)) + " |")
                continue
            if kind(key) == "hold":
                out.append(f"| {name} | {fmt(row['server_kib_per_conn'], 2)} | "
                           f"{ratio(row['mem_ratio'])} | "
                           f"{fmt(kib_to_mib(row['server_rss_before_kib']), 1)} | "
                           f"{fmt(kib_to_mib(row['server_rss_held_kib']), 1)} | "
                           f"{fmt(row['connect_s'], 2)} | {fmt(row['server_cpu_us_per_conn'], 1)} |")
            else:
                out.append(f"| {name} | {fmt(row['msgs_per_s'])} | {ratio(row['tput_ratio'])} | "
                           f"{fmt(row['mb_per_s'], 1)} | {fmt(row['server_cpu_us_per_msg'], 2)} | "
                           f"{ratio(row['cpu_ratio'])} | {fmt(row['p50_us'])} | "
                           f"{fmt(row['p99_us'])} | {ratio(row['p99_ratio'])} | "
                           f"{fmt(kib_to_mib(row['server_rss_kib']), 1)} |")
        if notes:
            out += [""] + [f"- {n}" for n in notes]
    out += ["", END]
    return "\n".join(out) + "\n"


def openssl_versions():
    """The OpenSSL the C++ servers link (the openssl command's) and the one Python's ssl uses."""
    try:
        tool = subprocess.run(["openssl", "version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except OSError:
        tool = "openssl unknown"
    import ssl
    return tool, ssl.OPENSSL_VERSION


# The targets for sockserv's TLS: (title, scenario, ratio field, limit, "max"|"min").
TLS_TARGETS = [
    ("full handshake CPU, ECDSA ≤ 1.05× ceiling", "hs_ec", "cpu_ratio", 1.05, "max"),
    ("full handshake CPU, RSA ≤ 1.05× ceiling", "hs_rsa", "cpu_ratio", 1.05, "max"),
    ("resumed handshake CPU ≤ 1.05× ceiling", "hs_resume", "cpu_ratio", 1.05, "max"),
    ("ping-pong CPU/msg ≤ Asio", "pp", "ref_cpu_ratio", 1.0, "max"),
    ("bulk MB/s ≥ 0.9× ceiling", "bulk", "tput_ratio", 0.9, "min"),
    ("idle memory ≤ ½ Asio", "hold", "ref_mem_ratio", 0.5, "max"),
]


def markdown_tls(args, table, names, started, load_before, load_after, others, suite):
    model, versions, commit = machine_description()
    commit = args.label or commit
    tool_ssl, python_ssl = openssl_versions()
    held = args.tls_held
    out = [TLS_BEGIN, "",
           "### TLS echo servers compared (`bench/compare.py --tls`)", "",
           f"Machine: {os.cpu_count()} × {model}, Linux {platform.release()}, "
           f"Python {platform.python_version()}; {', '.join(versions) or 'peer versions unknown'}; "
           f"{tool_ssl} (the C++ servers and the generator), Python's ssl on {python_ssl}. "
           f"sockserv {commit or 'unknown commit'}.",
           f"Run {started:%Y-%m-%d %H:%M} UTC: {args.repeats} repeat(s), {args.duration} s per cell "
           f"after {args.warmup} s of warm-up ({held:,} held for {args.hold_seconds} s), servers "
           f"interleaved; median of the repeats. Server on CPU 0, `sockserv bench --tls` on CPU 1 "
           f"(`taskset`){f', both at nice {args.nice}' if args.nice else ''}. Load average "
           f"before/after: {load_before:.2f} / {load_after:.2f}; CPU taken by other programs "
           f"during the cells: {others}.",
           "",
           "Certificates: self-signed ECDSA P-256 and RSA-2048, made with the `openssl` command "
           "for the run; the generator verifies them (`--cafile`, IP address 127.0.0.1). Every "
           "pair negotiates TLS 1.3 (OpenSSL's defaults on both sides: X25519, "
           "TLS_AES_256_GCM_SHA384). A handshake cell is 4 clients each opening one connection "
           "at a time (connect, handshake, one 64-byte echo, close_notify and close); its CPU µs "
           "are the server's per such connection. Ratios are to the hand-written OpenSSL + epoll "
           "loop (the ceiling) and, marked \"× Asio\", to Asio's `ssl::stream`, each taken "
           "within one repeat, then the median. sockserv runs with `--timeout 0` (threading also "
           "`--max-connections 16384`), except the \"defaults\" row (`serve --mode async` as "
           "shipped: a loop per core, both on the one server CPU, `--timeout 30`).", ""]

    def cpu(key):
        return lambda r: f"{fmt(r['server_cpu_us_per_msg'], 1)} ({ratio(r['cpu_ratio'])})"

    columns = [("full hs ECDSA µs", "hs_ec", cpu("hs_ec")),
               ("full hs RSA µs", "hs_rsa", cpu("hs_rsa")),
               ("resumed hs µs", "hs_resume", cpu("hs_resume")),
               ("ping-pong µs/msg", "pp",
                lambda r: f"{fmt(r['server_cpu_us_per_msg'], 2)} ({ratio(r['cpu_ratio'])})"),
               ("bulk MB/s", "bulk", lambda r: f"{fmt(r['mb_per_s'])} ({ratio(r['tput_ratio'])})"),
               (f"{held // 1000}k idle KiB/conn" if held >= 1000 else f"{held} idle KiB/conn",
                "hold",
                lambda r: f"{fmt(r['server_kib_per_conn'], 1)} ({ratio(r['mem_ratio'])})")]
    out += ["#### Summary: server CPU per handshake and per message (µs, × ceiling), bulk "
            "throughput, memory per idle connection", ""]
    out += ["| server | " + " | ".join(c[0] for c in columns) + " |",
            "|---|" + "---:|" * len(columns)]
    for name in names:
        out.append(f"| {name} | " + " | ".join(
            cell_text(table[key][name], render) if key in table else "–"
            for _, key, render in columns) + " |")
    out += ["", "#### The targets, for each sockserv row", ""]
    out += ["| target | " + " | ".join(n for n in names if n.startswith("sockserv")) + " |",
            "|---|" + "---|" * sum(1 for n in names if n.startswith("sockserv"))]
    for title, key, field, limit, sense in TLS_TARGETS:
        cells = []
        for name in (n for n in names if n.startswith("sockserv")):
            value = table.get(key, {}).get(name, {}).get(field)
            if value is None:
                cells.append("–")
                continue
            met = value <= limit if sense == "max" else value >= limit
            cells.append(f"{value:.2f}× {'met' if met else '**missed**'}")
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    for key, title, bench_args, cert in suite.scenarios:
        out += ["", f"#### {title}", "",
                f"`sockserv bench ADDR --tls --cafile {cert}.pem {' '.join(bench_args)}`", ""]
        k = kind(key)
        if k == "hold":
            out += ["| server | KiB/conn | × ceiling | × Asio | RSS before (MiB) | RSS held (MiB) | "
                    "connect+echo (s) | server CPU µs/conn |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|"]
        elif k == "handshake":
            out += ["| server | handshakes/s | × ceiling | server CPU µs/handshake | × ceiling | "
                    "× Asio | p50 µs | p99 µs | resumed | server RSS (MiB) |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        else:
            out += ["| server | msgs/s | MB/s | × ceiling | server CPU µs/msg | × ceiling | "
                    "× Asio | p50 µs | p99 µs | server RSS (MiB) |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        notes = []
        for name in names:
            row = table[key][name]
            if "na" in row or "error" in row:
                notes.append(f"{name}: {row.get('na') or row.get('error')}")
                cols = 7 if k == "hold" else 9
                out.append(f"| {name} | " + " | ".join(["n/a" if "na" in row else "error"]
                                                       + [""] * (cols - 1)) + " |")
                continue
            if k == "hold":
                out.append(f"| {name} | {fmt(row['server_kib_per_conn'], 2)} | "
                           f"{ratio(row['mem_ratio'])} | {ratio(row.get('ref_mem_ratio'))} | "
                           f"{fmt(kib_to_mib(row['server_rss_before_kib']), 1)} | "
                           f"{fmt(kib_to_mib(row['server_rss_held_kib']), 1)} | "
                           f"{fmt(row['connect_s'], 2)} | {fmt(row['server_cpu_us_per_conn'], 1)} |")
            elif k == "handshake":
                resumed = row.get("resumed_fraction")
                out.append(f"| {name} | {fmt(row['msgs_per_s'])} | {ratio(row['tput_ratio'])} | "
                           f"{fmt(row['server_cpu_us_per_msg'], 1)} | {ratio(row['cpu_ratio'])} | "
                           f"{ratio(row.get('ref_cpu_ratio'))} | {fmt(row['p50_us'])} | "
                           f"{fmt(row['p99_us'])} | "
                           f"{'–' if resumed is None else fmt(resumed * 100, 0, ' %')} | "
                           f"{fmt(kib_to_mib(row['server_rss_kib']), 1)} |")
            else:
                out.append(f"| {name} | {fmt(row['msgs_per_s'])} | {fmt(row['mb_per_s'], 1)} | "
                           f"{ratio(row['tput_ratio'])} | {fmt(row['server_cpu_us_per_msg'], 2)} | "
                           f"{ratio(row['cpu_ratio'])} | {ratio(row.get('ref_cpu_ratio'))} | "
                           f"{fmt(row['p50_us'])} | {fmt(row['p99_us'])} | "
                           f"{fmt(kib_to_mib(row['server_rss_kib']), 1)} |")
        if notes:
            out += [""] + [f"- {n}" for n in notes]
    out += ["", TLS_END]
    return "\n".join(out) + "\n"


# ---- UDP (--udp) -------------------------------------------------------------------------------

UDP_CEILING = "recvmmsg loop (ceiling)"
UDP_BEGIN, UDP_END = "<!-- compare-udp:begin -->", "<!-- compare-udp:end -->"


def udp_servers(build, nproc):
    """(name, command) of every UDP echo server, on 127.0.0.1, port 0."""
    tool = os.path.join(build, "tools", "sockserv")
    peers = os.path.join(build, "bench", "peers")
    pysrc = os.path.join(ROOT, "bench", "peers")

    def mode(m, *extra):  # sockserv serve at its defaults otherwise
        return [tool, "serve", "--mode", m, *extra, "--handler", "echo", "--udp", "127.0.0.1:0"]

    return [
        ("sockserv async ×1", mode("async", "--threads", "1")),
        (f"sockserv async, defaults (×{nproc})", mode("async")),
        ("sockserv async ×1, io_uring",
         ["/usr/bin/env", "SOCKSERV_POLLER=io_uring", *mode("async", "--threads", "1")]),
        ("sockserv sync", mode("sync")),
        ("sockserv threading", mode("threading")),
        ("libuv (UV_UDP_RECVMMSG)", [os.path.join(peers, "libuv_udp_echo"), "0"]),
        ("Python UDPServer", [sys.executable, os.path.join(pysrc, "py_udp_echo.py"), "0"]),
        (UDP_CEILING, [os.path.join(peers, "recvmmsg_echo"), "0"]),
    ]


UDP_METRICS = ["dgrams_per_s", "server_cpu_us_per_dgram", "burst_lost", "burst_loss_pct",
               "burst_server_cpu_us_per_dgram", "resent"]


def run_udp_cell(args, command, logdir, label):
    """One server under bench/peers/udp_load (steady load, then the burst): its JSON, or
    {'error': text}."""
    load = os.path.join(args.build_dir, "bench", "peers", "udp_load")
    logpath = os.path.join(logdir, re.sub(r"[^A-Za-z0-9]+", "_", label) + ".log")
    with open(logpath, "ab") as log:
        try:
            server = Server(command, log)
        except (OSError, RuntimeError) as e:
            return {"error": f"start: {e}"}
        try:
            port = server.address.rsplit(":", 1)[1]
            cmd = ["taskset", "-c", "1", load, port, str(server.proc.pid), "50", "64",
                   str(args.duration), str(args.warmup), str(args.burst)]
            done = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=args.duration + args.warmup + 30, preexec_fn=raise_nofile)
            if server.exited():
                return {"error": f"the server died during the run (see {logpath})"}
            if done.returncode != 0:
                return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
            return json.loads(done.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            return {"error": "the load generator did not finish in time"}
        finally:
            server.stop()


def run_udp(args, nproc, logdir):
    """--udp: every server, args.repeats times (interleaved, rotated); returns the Markdown."""
    server_list = udp_servers(args.build_dir, nproc)
    if args.only:
        wanted = args.only.split(",")
        server_list = [s for s in server_list
                       if s[0] == UDP_CEILING or any(w in s[0] for w in wanted)]
    results = []  # results[repeat][server] = cell
    started = time.monotonic()
    for repeat in range(args.repeats):
        shift = repeat % len(server_list)
        cells = {}
        for name, command in server_list[shift:] + server_list[:shift]:
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            cell = run_udp_cell(args, command, logdir, f"udp-{name}")
            cells[name] = cell
            note = cell.get("error") or (
                f"{fmt(cell.get('dgrams_per_s'))} dgram/s, server "
                f"{fmt(cell.get('server_cpu_us_per_dgram'), 2)} µs/dgram, burst lost "
                f"{cell.get('burst_lost')} of {cell.get('burst')}")
            print(f"[{time.monotonic() - started:5.0f} s] repeat {repeat + 1} {name:34} {note}",
                  file=sys.stderr, flush=True)
        results.append(cells)
    model, versions, commit = machine_description()
    lines = [UDP_BEGIN, "",
             f"Measured {datetime.date.today()} on {model} ({nproc} CPUs), "
             f"{args.label or commit}; {', '.join(versions)}. Server on CPU 0, "
             f"bench/peers/udp_load on CPU 1: 50 sockets, 64-byte datagrams, one in flight per "
             f"socket, {args.warmup:g} s warm-up then {args.duration:g} s measured; then a burst "
             f"of {args.burst:,} datagrams sent without pause. Medians of {args.repeats} repeats; "
             f"the CPU ratio is taken per repeat, then the median.", "",
             "| server | datagrams/s | server CPU µs/datagram | CPU vs ceiling | burst lost "
             "(of %s) | burst loss | CPU µs/datagram in the burst |" % f"{args.burst:,}",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, _ in server_list:
        cells = [r.get(name, {"error": "missing"}) for r in results]
        good = [c for c in cells if "error" not in c]
        if not good:
            lines.append(f"| {name} | {cells[0]['error']} | | | | | |")
            continue
        row = {m: median([c.get(m) for c in good]) for m in UDP_METRICS}
        ratios = []
        for r in results:
            c, ref = r.get(name, {}), r.get(UDP_CEILING, {})
            if c.get("server_cpu_us_per_dgram") and ref.get("server_cpu_us_per_dgram"):
                ratios.append(c["server_cpu_us_per_dgram"] / ref["server_cpu_us_per_dgram"])
        lines.append(f"| {name} | {fmt(row['dgrams_per_s'])} | "
                     f"{fmt(row['server_cpu_us_per_dgram'], 2)} | {ratio(median(ratios))} | "
                     f"{fmt(row['burst_lost'])} | {fmt(row['burst_loss_pct'], 1, ' %')} | "
                     f"{fmt(row['burst_server_cpu_us_per_dgram'], 2)} |")
    lines += ["", UDP_END, ""]
    if args.raw:
        with open(args.raw, "w") as f:
            json.dump({"meta": {"suite": "udp"}, "results": results}, f, indent=1)
    return "\n".join(lines)


def kib_to_mib(kib):
    return None if kib is None else kib / 1024


def load_charts():
    """bench/charts.py, which needs matplotlib: Debian's, in Debian's python3 (a pyenv or venv
    python3 first in PATH does not see it)."""
    try:
        import charts
    except ImportError as e:
        sys.exit(f"compare.py: --plot needs matplotlib ({e}): scripts/bootstrap.sh bench installs "
                 f"python3-matplotlib; run compare.py with /usr/bin/python3")
    return charts


def write_block(block, begin=BEGIN, end=END):
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + block.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build", "release"))
    parser.add_argument("--tls", action="store_true",
                        help="compare the TLS servers instead (handshakes, ping-pong, bulk, idle "
                        "memory; defaults then: 2 repeats of 1.5 s, 0.3 s warm-up, 0.5 s held)")
    parser.add_argument("--udp", action="store_true",
                        help="compare the UDP echo servers instead (steady load and a burst, "
                        "against a hand-written recvmmsg loop, libuv and Python's UDPServer)")
    parser.add_argument("--burst", type=int, default=10_000, metavar="N",
                        help="--udp: datagrams in the burst (default 10,000)")
    parser.add_argument("--tls-held", type=int, default=10_000, metavar="N",
                        help="--tls: idle connections held in the memory cell (default 10,000)")
    parser.add_argument("--repeats", type=int, help="default 3 (--tls: 2)")
    parser.add_argument("--duration", type=float, help="seconds measured per cell (default 3; "
                        "--tls: 1.5)")
    parser.add_argument("--warmup", type=float, help="default 0.5 (--tls: 0.3)")
    parser.add_argument("--hold-seconds", type=float, help="default 1 (--tls: 0.5)")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each cell, wait up to this long for other programs to leave "
                        "the CPUs idle")
    parser.add_argument("--nice", type=int, default=0,
                        help="run servers and generator at this nice value (e.g. -10, as root, "
                        "on a machine other work shares)")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 1 s: a smoke run")
    parser.add_argument("--only", help="comma-separated server names (substrings) to run; the "
                        "ceiling always runs")
    parser.add_argument("--scenarios", metavar="KEYS",
                        help="comma-separated scenario keys to run (plain: pp1,pp16,lat,bulk,hold; "
                        "--tls: hs_ec,hs_rsa,hs_resume,pp,bulk,hold), for a focused run with more "
                        "repeats")
    parser.add_argument("--pair", metavar="A,B",
                        help="also print server A's cost over server B's, repeat by repeat "
                        "(median, range, how often A costs no more): exact server names, "
                        "separated by '|' when one holds a comma")
    parser.add_argument("--before", metavar="BUILD_DIR",
                        help="also run every sockserv row with that build's sockserv, named "
                        "'NAME (before)': an earlier commit, measured in the same run")
    parser.add_argument("--write", action="store_true",
                        help="also put the table into docs/BENCHMARKS.md between its markers")
    parser.add_argument("--label", help="what was measured, instead of `git describe` of this tree")
    parser.add_argument("--raw", help="write every measurement as JSON to this file")
    parser.add_argument("--from-raw", metavar="FILE",
                        help="measure nothing: render the tables of an earlier --raw file")
    parser.add_argument("--plot", metavar="DIR",
                        help="also draw the comparison as SVG charts into DIR (bench/charts.py; "
                        "needs Debian's python3-matplotlib); not for --udp")
    args = parser.parse_args()
    if args.plot and args.udp:
        sys.exit("compare.py: --plot draws the TCP and TLS comparisons, not --udp")
    charts = load_charts() if args.plot else None  # before a long run, not after it
    raw = None
    if args.from_raw:
        with open(args.from_raw) as f:
            raw = json.load(f)
        args.tls = raw["meta"].get("suite") == "tls"
        args.tls_held = raw["meta"].get("tls_held", args.tls_held)
    defaults = (2, 1.5, 0.3, 0.5) if args.tls else (3, 3.0, 0.5, 1.0)
    if args.quick:
        defaults = (1, 1.0, 0.2, 0.2)
    for key, value in zip(("repeats", "duration", "warmup", "hold_seconds"), defaults):
        if getattr(args, key) is None or args.quick:
            setattr(args, key, value)
    args.build_dir = os.path.abspath(args.build_dir)
    global NICE
    NICE = args.nice
    tool = os.path.join(args.build_dir, "tools", "sockserv")
    if not args.from_raw and not os.access(tool, os.X_OK):
        sys.exit(f"compare.py: {tool} not found: build first (bench/run.sh does)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("compare.py: needs two CPUs (server on CPU 0, load generator on CPU 1)")
    if args.udp:
        logdir = tempfile.mkdtemp(prefix="sockserv-compare-udp-")
        block = run_udp(args, os.cpu_count() or 2, logdir)
        print(block)
        if args.write:
            print(f"written to {write_block(block, UDP_BEGIN, UDP_END)}", file=sys.stderr)
        return
    if args.tls:
        suite = Suite(tls_scenarios(args.tls_held), TLS_CEILING, tls_not_applicable(args.tls_held),
                      reference=TLS_REFERENCE)
        candidates = tls_servers(args.build_dir)
    else:
        suite = Suite(SCENARIOS, CEILING, not_applicable)
        candidates = servers(args.build_dir, os.cpu_count())
        if args.before:
            # The same sockserv rows from another build (an earlier commit): "(before)".
            mine = os.path.join(args.build_dir, "tools", "sockserv")
            theirs = os.path.join(args.before, "tools", "sockserv")
            candidates += [(f"{name} (before)", [theirs if c == mine else c for c in command])
                           for name, command in candidates if name.startswith("sockserv")]
    if args.scenarios:
        wanted = [k.strip() for k in args.scenarios.split(",")]
        unknown = [k for k in wanted if k not in suite.keys()]
        if unknown:
            sys.exit(f"compare.py: unknown scenario {', '.join(unknown)}: "
                     f"{', '.join(suite.keys())}")
        suite.scenarios = [s for s in suite.scenarios if s[0] in wanted]
    server_list = []
    for name, command in [] if raw else candidates:  # --from-raw runs nothing
        program = command[0]
        if program == "/usr/bin/env":  # env VAR=VALUE... PROGRAM
            program = next(word for word in command[1:] if "=" not in word)
        if not (os.access(program, os.X_OK)):
            print(f"compare.py: skipping {name}: {program} not built", file=sys.stderr)
            continue
        if args.only and name != suite.ceiling and not any(
                s.strip().lower() in name.lower() for s in args.only.split(",")):
            continue
        server_list.append((name, command))
    names = [n for n, _ in server_list]
    if raw:
        names, results, meta = raw["servers"], raw["results"], raw["meta"]
        if meta.get("scenarios"):
            suite.scenarios = [s for s in suite.scenarios if s[0] in meta["scenarios"]]
        for key in ("repeats", "duration", "warmup", "hold_seconds", "nice"):
            setattr(args, key, meta[key])
        args.label = args.label or meta.get("label")
    else:
        meta = {"started": datetime.datetime.utcnow().isoformat(), "load_before": os.getloadavg()[0],
                "repeats": args.repeats, "duration": args.duration, "warmup": args.warmup,
                "hold_seconds": args.hold_seconds, "nice": args.nice, "label": args.label}
        meta["scenarios"] = suite.keys()
        if args.tls:
            meta.update(suite="tls", tls_held=args.tls_held)
        logdir = os.path.join(args.build_dir, "compare-logs")  # the servers' stderr, per cell
        shutil.rmtree(logdir, ignore_errors=True)
        os.makedirs(logdir)
        certdir = tempfile.mkdtemp(prefix="sockserv-compare-tls-") if args.tls else None
        try:
            if args.tls:
                suite.certs = make_certificates(certdir)
            results = measure(args, server_list, logdir, suite)
        finally:
            if certdir:
                shutil.rmtree(certdir, ignore_errors=True)
        meta["load_after"] = os.getloadavg()[0]
        if args.raw:
            with open(args.raw, "w") as f:
                json.dump({"servers": names, "results": results, "meta": meta}, f, indent=1)
    started = datetime.datetime.fromisoformat(meta["started"])
    table = aggregate(results, names, suite)
    if args.tls:
        block = markdown_tls(args, table, names, started, meta["load_before"], meta["load_after"],
                             other_load(results), suite)
    else:
        block = markdown(args, table, names, started, meta["load_before"], meta["load_after"],
                         other_load(results))
    sys.stdout.write(block)
    if args.pair:
        # "A|B" when a name holds a comma ("sockserv async ×1, io_uring|epoll (ceiling)").
        a, b = (x.strip() for x in args.pair.split("|" if "|" in args.pair else ",", 1))
        if a not in names or b not in names:
            sys.exit(f"compare.py: --pair needs two of: {', '.join(names)}")
        sys.stdout.write("\n" + paired(results, a, b, suite))
    if args.write:
        where = write_block(block, TLS_BEGIN, TLS_END) if args.tls else write_block(block)
        print(f"compare.py: wrote {where}", file=sys.stderr)
    if charts:
        subtitle = f"{'TLS, ' if args.tls else ''}{args.label or machine_description()[2]}, " \
                   f"run {started:%Y-%m-%d}"
        for path in charts.write_charts(args.plot, table, names, [s[:2] for s in suite.scenarios],
                                        kind, suite.ceiling, subtitle, "tls-" if args.tls else ""):
            print(f"compare.py: wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
