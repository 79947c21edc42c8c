#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Soak test (issue 11): mixed load for a bounded time against every mode at once.

Run through scripts/soak.sh MINUTES [SOCKSERV_BINARY]. Starts one `sockserv serve --handler echo`
per mode (sync, threading, pool, forking, async) plus one TLS server, all on 127.0.0.1 port 0
with `--deny 127.0.0.66/32 --max-per-client 16`, and drives them at once from threads:

  pingpong  sessions of random-size messages, every byte compared
  bulk      a few MiB each way (sender thread, half-close), SHA-256 compared
  slow      a byte every 100 ms, then the echo compared
  reset     data sent, some of the echo read, then SO_LINGER 0 and close (an RST)
  flood     40 connections at once from 127.0.0.77: those past --max-per-client must end at once
            (EOF or reset) and are counted; none may hang
  denied    connections from 127.0.0.66: closed at once, no reply
  tls       TLS sessions through the TLS server while it gets SIGHUP every 3 s, its certificate
            swapped between two self-signed ones before each (clients trust both)

Each client binds its own source address in 127.0.0.0/8 so the servers see separate clients.
After a warm-up the servers' fds, threads, children and RSS are the baseline; after the load and
a settle period (15 s at most) they must be back to it (RSS within a tolerance: allocator and
thread-stack caches). Then the servers' last `stats` lines are checked (denied and limited equal
what the clients saw, handler_errors 0), each server gets SIGTERM and must exit 0, and the logs
must hold no sanitizer report and no error line. Every wait is bounded; only loopback is used;
only the processes started here are signalled. Exit status 0 when everything held.
"""
import argparse
import hashlib
import os
import random
import re
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

MODES = ["sync", "threading", "pool", "forking", "async"]
DENIED_ADDR = "127.0.0.66"
FLOOD_ADDR = "127.0.0.77"
MAX_PER_CLIENT = 16
FLOOD_SIZE = 40
IO_TIMEOUT = 20.0  # seconds any single client wait may take before it counts as a hang
SETTLE_SECONDS = 15.0
RELOAD_EVERY = 3.0
POOL = os.urandom(8 << 20)  # payloads are slices of this
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class Tally:
    """Counts per (server, kind) and the failures, shared by every client thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = defaultdict(lambda: defaultdict(int))
        self.failures = {}  # the same failure with other numbers: one entry and a count
        self.failure_count = 0
        self.fingerprints = set()

    def add(self, server, kind, n=1):
        with self.lock:
            self.counts[server][kind] += n

    def fail(self, server, kind, message):
        with self.lock:
            self.failure_count += 1
            key = (server, kind, re.sub(r"\d+", "N", message))
            first, count = self.failures.get(key, (message, 0))
            self.failures[key] = (first, count + 1)


class Server:
    """One `sockserv serve` process we started, its log file and its /proc figures."""

    def __init__(self, binary, name, mode, extra, tmp):
        self.name, self.mode = name, mode
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "wb")
        args = [binary, "serve", "--tcp", "127.0.0.1:0", "--mode", mode, "--handler", "echo",
                "--stats", "1", "--grace", "5", "--deny", DENIED_ADDR + "/32",
                "--max-per-client", str(MAX_PER_CLIENT), "--rate-per-client", "5000/5000"]
        self.proc = subprocess.Popen(args + extra, stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.address = self._read_banner()
        self.baseline = None
        self.peak_rss = 0

    def _read_banner(self):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = b""
        deadline = time.monotonic() + 30
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                chunk = os.read(self.proc.stdout.fileno(), 256)
                if not chunk:
                    break
                line += chunk
        sel.close()
        m = re.match(rb"listening on ([\d.]+):(\d+)", line)
        if not m:
            raise RuntimeError(f"{self.name}: no 'listening on' line (got {line!r}), "
                               f"see {self.log_path}")
        return (m.group(1).decode(), int(m.group(2)))

    def figures(self):
        """(fds, threads, children, rss_kib) from /proc."""
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        threads = len(os.listdir(f"/proc/{self.pid}/task"))
        children = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                    children += 1
        rss = 0
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return fds, threads, children, rss

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def last_stats(self):
        lines = [l for l in self.log_text().splitlines() if " stats accepted=" in l]
        if not lines:
            return {}
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1].split(" stats ", 1)[1])}


# ---- clients --------------------------------------------------------------------------------

def connect(server, source, timeout=IO_TIMEOUT):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    # The port is picked at connect for the whole 4-tuple: many short sessions per source
    # address do not run out of ports to TIME_WAIT.
    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.bind((source, 0))
    sock.connect(server.address)
    return sock


def recv_exact(sock, n):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise ConnectionError(f"EOF after {got} of {n} bytes")
        got += k
    return bytes(buf)


def payload(rng, size):
    off = rng.randrange(0, len(POOL) - size)
    return POOL[off:off + size]


def message_size(rng):
    return int(2 ** rng.uniform(0, 16))  # 1 byte to 64 KiB, log-uniform


def reset_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def pingpong(server, source, rng, tally, wrap=None):
    sock = connect(server, source)
    kind = "tls" if wrap else "pingpong"
    try:
        if wrap:
            sock = wrap(sock)
            tally.fingerprints.add(hashlib.sha256(sock.getpeercert(True)).hexdigest()[:16])
        for _ in range(rng.randint(1, 20)):
            data = payload(rng, message_size(rng))
            sock.sendall(data)
            if recv_exact(sock, len(data)) != data:
                raise AssertionError(f"echo of {len(data)} bytes differs")
            tally.add(server.name, kind + " messages")
            tally.add(server.name, "bytes echoed", len(data))
        if wrap:
            sock = sock.unwrap()  # close_notify both ways
    finally:
        sock.close()
    tally.add(server.name, kind + " sessions")


def bulk(server, source, rng, tally):
    size = rng.randint(2 << 20, 4 << 20)
    data = payload(rng, size)
    sock = connect(server, source)
    errors = []

    def send():
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)

    sender = threading.Thread(target=send)
    sender.start()
    digest, got = hashlib.sha256(), 0
    try:
        while chunk := sock.recv(1 << 16):
            digest.update(chunk)
            got += len(chunk)
    finally:
        sender.join(IO_TIMEOUT)
        sock.close()
    if errors or sender.is_alive():
        raise AssertionError(f"sending {size} bytes: {errors or 'hung'}")
    if got != size or digest.digest() != hashlib.sha256(data).digest():
        raise AssertionError(f"bulk echo: {got} of {size} bytes, checksum differs")
    tally.add(server.name, "bulk transfers")
    tally.add(server.name, "bytes echoed", size)


def slow(server, source, rng, tally, deadline):
    data = payload(rng, rng.randint(5, 25))
    sock = connect(server, source)
    try:
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
            if time.monotonic() > deadline:
                data = data[:i + 1]
                break
            time.sleep(0.1)
        if recv_exact(sock, len(data)) != data:
            raise AssertionError("slow echo differs")
    finally:
        sock.close()
    tally.add(server.name, "slow sessions")


def reset(server, source, rng, tally):
    sock = connect(server, source)
    try:
        data = payload(rng, rng.choice([1, 100, 20000, 300000]))
        if len(data) <= 100:
            sock.sendall(data)
        else:  # a big request: read some of the echo, reset while the server is still sending
            threading.Thread(target=lambda: _quiet_sendall(sock, data), daemon=True).start()
            recv_exact(sock, 1000)
        time.sleep(rng.uniform(0, 0.02))
    finally:
        reset_close(sock)
    tally.add(server.name, "resets")


def _quiet_sendall(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass  # the reset closed it


def ends_without_reply(sock):
    """True when the server closes (EOF or RST) without a byte; raises on a timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def flood(server, rng, tally):
    socks = []
    try:
        for i in range(FLOOD_SIZE):
            socks.append(connect(server, FLOOD_ADDR))
            socks[-1].sendall(b"flood %03d\n" % i)
        accepted = refused = 0
        for i, sock in enumerate(socks):
            # The first byte decides: an echo (served) or EOF/reset (refused at accept).
            try:
                first = sock.recv(1)
            except ConnectionResetError:
                first = b""
            if not first:
                refused += 1
                continue
            expect = b"flood %03d\n" % i
            if first + recv_exact(sock, len(expect) - 1) != expect:
                raise AssertionError("flood echo differs")
            accepted += 1
            if server.mode == "sync":
                sock.close()  # one request at a time: the next is served after this one
    finally:
        for sock in socks:
            sock.close()
    tally.add(server.name, "flood served", accepted)
    tally.add(server.name, "flood refused", refused)
    if server.mode == "sync":
        if refused:
            raise AssertionError(f"sync: {refused} refused (one connection at a time)")
    elif accepted > MAX_PER_CLIENT or refused < FLOOD_SIZE - MAX_PER_CLIENT:
        raise AssertionError(f"flood: {accepted} served, {refused} refused")


def denied(server, rng, tally):
    sock = connect(server, DENIED_ADDR)
    try:
        sock.sendall(b"let me in\n")
        if not ends_without_reply(sock):
            raise AssertionError("a denied peer got a reply")
    finally:
        sock.close()
    tally.add(server.name, "denied")


# ---- the run --------------------------------------------------------------------------------

class Load:
    """Client threads for every server until the deadline; each round bounded by IO_TIMEOUT."""

    def __init__(self, servers, tls_server, tls_context, tally):
        self.servers, self.tls_server, self.tally = servers, tls_server, tally
        self.tls_context = tls_context
        self.next_source = 0
        self.threads = []

    def source(self):
        self.next_source += 1
        return f"127.1.{self.next_source // 250}.{self.next_source % 250 + 1}"

    def start(self, deadline, stop, max_rounds):
        wrap = lambda s: self.tls_context.wrap_socket(s, server_hostname="127.0.0.1")
        for server in self.servers + [self.tls_server]:
            jobs = [("denied", lambda s, src, r: denied(s, r, self.tally))]
            if server is self.tls_server:
                jobs += [("tls", lambda s, src, r: pingpong(s, src, r, self.tally, wrap))] * 2
            else:
                jobs += [("pingpong", lambda s, src, r: pingpong(s, src, r, self.tally))] * 2
                jobs += [("bulk", lambda s, src, r: bulk(s, src, r, self.tally)),
                         ("slow", lambda s, src, r: slow(s, src, r, self.tally, deadline)),
                         ("reset", lambda s, src, r: reset(s, src, r, self.tally)),
                         ("flood", lambda s, src, r: flood(s, r, self.tally))]
            for kind, job in jobs:
                args = (server, kind, job, self.source(), deadline, stop, max_rounds)
                self.threads.append(threading.Thread(target=self.run, args=args, daemon=True))
        for t in self.threads:
            t.start()

    def run(self, server, kind, job, source, deadline, stop, max_rounds):
        rng = random.Random(f"{server.name}-{kind}-{source}")
        pause = {"flood": 1.0, "denied": 0.2}.get(kind, 0.0)
        for _ in range(max_rounds):
            if time.monotonic() >= deadline or stop.is_set():
                break
            try:
                job(server, source, rng)
            except Exception as e:  # every failure is counted and reported, the load goes on
                self.tally.fail(server.name, kind, f"{type(e).__name__}: {e}")
                if self.tally.failure_count > 200:
                    stop.set()
            stop.wait(pause)

    def join(self, timeout):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        return sum(t.is_alive() for t in self.threads)


def make_certs(tmp):
    """Two self-signed certificates for 127.0.0.1 (A and B) and a CA file trusting both."""
    for name in "AB":
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", f"/CN=sockserv-soak-{name}", "-addext",
                        "subjectAltName=IP:127.0.0.1", "-keyout", f"{tmp}/{name}.key",
                        "-out", f"{tmp}/{name}.crt"], check=True, capture_output=True)
    with open(f"{tmp}/trust.pem", "wb") as out:
        for name in "AB":
            with open(f"{tmp}/{name}.crt", "rb") as f:
                out.write(f.read())
    install_cert(tmp, "A")
    return ssl.create_default_context(cafile=f"{tmp}/trust.pem")


def install_cert(tmp, name):
    for ext in ("crt", "key"):
        shutil.copy(f"{tmp}/{name}.{ext}", f"{tmp}/server.{ext}.new")
        os.replace(f"{tmp}/server.{ext}.new", f"{tmp}/server.{ext}")


def reloader(tls_server, tmp, deadline, stop, tally):
    name = "A"
    while not stop.wait(RELOAD_EVERY) and time.monotonic() < deadline:
        name = "B" if name == "A" else "A"
        install_cert(tmp, name)
        os.kill(tls_server.pid, signal.SIGHUP)
        tally.add(tls_server.name, "reloads")


def monitor(servers, stop, tally):
    """Every second: every server still running, and its peak RSS."""
    while not stop.wait(1.0):
        for s in servers:
            if s.proc.poll() is not None:
                tally.fail(s.name, "process", f"exited during the load ({s.proc.returncode})")
                stop.set()
                return
            try:
                s.peak_rss = max(s.peak_rss, s.figures()[3])
            except OSError:
                pass


def settle(servers, want, seconds):
    """Polls until want(server, figures) holds for every server (bounded); returns the figures."""
    end = time.monotonic() + seconds
    while True:
        figures = {s.name: s.figures() for s in servers}
        if all(want(s, figures[s.name]) for s in servers) or time.monotonic() > end:
            return figures
        time.sleep(0.5)


def take_baseline(servers):
    """After the warm-up: no children left, and fds and threads the same for a whole second."""
    previous = {}

    def stable(s, f):
        same = previous.get(s.name, (None,))[:2] == f[:2]
        previous[s.name] = f
        return same and f[2] == 0

    figures = settle(servers, stable, SETTLE_SECONDS)
    for s in servers:
        s.baseline = figures[s.name]


def rss_limit(baseline_kib, slack_mib):
    return baseline_kib + max(slack_mib * 1024, baseline_kib // 2)


def check_back_to_baseline(servers, tally, slack_mib):
    def back(s, f):
        b = s.baseline
        return f[:3] == b[:3] and f[3] <= rss_limit(b[3], slack_mib)

    figures = settle(servers, back, SETTLE_SECONDS)
    for s in servers:
        f, b = figures[s.name], s.baseline
        s.final = f
        for i, what in enumerate(["open fds", "threads", "children"]):
            if f[i] != b[i]:
                tally.fail(s.name, "resources", f"{what}: {f[i]} after the load, {b[i]} before")
        if f[3] > rss_limit(b[3], slack_mib):
            tally.fail(s.name, "resources", f"RSS {f[3]} KiB after the load, baseline {b[3]} KiB "
                       f"(limit {rss_limit(b[3], slack_mib)})")


def stop_servers(servers, tally):
    for s in servers:
        s.proc.send_signal(signal.SIGTERM)
    for s in servers:
        try:
            rc = s.proc.wait(30)
        except subprocess.TimeoutExpired:
            s.proc.kill()  # our own child, by its Popen handle
            rc = s.proc.wait(10)
            tally.fail(s.name, "exit", "no exit within 30 s of SIGTERM (killed)")
        if rc != 0:
            tally.fail(s.name, "exit", f"exit status {rc} after SIGTERM")
        s.log.close()


SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                       r"ThreadSanitizer|runtime error:")


def check_logs(servers, tls_server, tally):
    for s in servers:
        text = s.log_text()
        stats = s.last_stats()
        s.stats = stats
        counts = tally.counts[s.name]
        if SANITIZER.search(text):
            tally.fail(s.name, "sanitizer", f"report in {s.log_path}")
        errors = [l for l in text.splitlines() if re.match(r"^\S+ ERROR ", l)]
        if errors:
            tally.fail(s.name, "log", f"{len(errors)} ERROR lines, first: {errors[0]}")
        if not stats:
            tally.fail(s.name, "stats", "no stats line")
            continue
        expect = {"handler_errors": 0, "denied": counts["denied"],
                  "limited": counts["flood refused"]}
        for key, want in expect.items():
            if stats.get(key, 0) != want:
                tally.fail(s.name, "stats", f"{key}={stats.get(key, 0)}, the clients saw {want}")
    reloads = tally.counts[tls_server.name]["reloads"]
    done = tls_server.log_text().count("SIGHUP: TLS certificates, keys and ticket keys reloaded")
    if done != reloads or "reload failed" in tls_server.log_text():
        tally.fail(tls_server.name, "reload", f"{reloads} SIGHUPs sent, {done} reloads logged")
    if reloads >= 2 and len(tally.fingerprints) != 2:
        tally.fail(tls_server.name, "reload", f"clients saw {len(tally.fingerprints)} "
                   "certificates, expected both")


def print_table(servers, tally):
    mib = lambda kib: f"{kib / 1024:.1f}"
    print("\nclients' view (successful rounds; every byte compared):")
    print(f"{'server':10} {'msgs':>7} {'MiB':>7} {'bulk':>5} {'slow':>5} {'resets':>6} "
          f"{'flood ok/refused':>16} {'denied':>6} {'tls msgs':>8} {'reloads':>7}")
    for s in servers:
        c = tally.counts[s.name]
        flood = f"{c['flood served']}/{c['flood refused']}"
        print(f"{s.name:10} {c['pingpong messages']:7} {c['bytes echoed'] / 2**20:7.1f} "
              f"{c['bulk transfers']:5} {c['slow sessions']:5} {c['resets']:6} {flood:>16} "
              f"{c['denied']:6} {c['tls messages']:8} {c['reloads']:7}")
    print("\nservers' view (last stats line; /proc baseline -> after the load):")
    print(f"{'server':10} {'accepted':>8} {'denied':>6} {'limited':>7} {'resets':>6} "
          f"{'h_err':>5} {'fds':>7} {'threads':>7} {'children':>8} {'RSS MiB base/peak/end':>22}")
    for s in servers:
        st, b = getattr(s, "stats", {}), s.baseline
        f = getattr(s, "final", ("-",) * 3 + (0,))  # none: the server had died
        rss = f"{mib(b[3])}/{mib(max(s.peak_rss, f[3]))}/{mib(f[3])}"
        print(f"{s.name:10} {st.get('accepted', 0):8} {st.get('denied', 0):6} "
              f"{st.get('limited', 0):7} {st.get('peer_resets', 0):6} "
              f"{st.get('handler_errors', 0):5} {f'{b[0]}->{f[0]}':>7} {f'{b[1]}->{f[1]}':>7} "
              f"{f'{b[2]}->{f[2]}':>8} {rss:>22}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("minutes", type=float, help="length of the load (fractions allowed)")
    parser.add_argument("binary", help="the sockserv executable")
    parser.add_argument("--rss-slack-mib", type=int, default=8,
                        help="RSS may end this much (or half the baseline) above the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the logs' directory")
    args = parser.parse_args()
    if not 0 < args.minutes <= 24 * 60:
        parser.error("MINUTES must be in (0, 1440]")
    tmp = tempfile.mkdtemp(prefix="sockserv-soak-")
    tally, stop, servers = Tally(), threading.Event(), []
    try:
        tls_context = make_certs(tmp)
        for mode in MODES:
            extra = ["--threads", "2"] if mode == "async" else []
            servers.append(Server(args.binary, mode, mode, extra, tmp))
        tls_server = Server(args.binary, "tls-async", "async",
                            ["--threads", "2", "--tls-cert", f"{tmp}/server.crt",
                             "--tls-key", f"{tmp}/server.key"], tmp)
        servers.append(tls_server)
        print(f"soak: {len(servers)} servers up ({', '.join(s.name for s in servers)}); "
              f"logs in {tmp}", flush=True)

        warmup = Load(servers[:-1], tls_server, tls_context, tally)
        warmup.start(time.monotonic() + 4, stop, 3)
        if warmup.join(4 + 2 * IO_TIMEOUT):
            tally.fail("soak", "warm-up", "client threads still running")
        take_baseline(servers)

        seconds = args.minutes * 60
        print(f"soak: baseline taken; {seconds:.0f} s of load", flush=True)
        deadline = time.monotonic() + seconds
        load = Load(servers[:-1], tls_server, tls_context, tally)
        load.start(deadline, stop, 10**6)
        helpers = [threading.Thread(target=reloader, args=(tls_server, tmp, deadline, stop, tally),
                                    daemon=True),
                   threading.Thread(target=monitor, args=(servers, stop, tally), daemon=True)]
        for h in helpers:
            h.start()
        # FLOOD_SIZE sockets per flood round, each wait bounded: IO_TIMEOUT covers all of them.
        hung = load.join(seconds + 3 * IO_TIMEOUT)
        stop.set()
        if hung:
            tally.fail("soak", "load", f"{hung} client threads still running (a hang)")
        for h in helpers:
            h.join(5)
        check_back_to_baseline([s for s in servers if s.proc.poll() is None], tally,
                               args.rss_slack_mib)
        stop_servers(servers, tally)
        check_logs(servers, tls_server, tally)
        print_table(servers, tally)
    except Exception as e:
        tally.fail("soak", "driver", f"{type(e).__name__}: {e}")
        for s in servers:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(10)
    if tally.failure_count:
        print(f"\nsoak: FAILED, {tally.failure_count} failures:")
        for (server, kind, _), (first, count) in tally.failures.items():
            print(f"  {count:5}x {server} {kind}: {first}")
        print(f"soak: logs kept in {tmp}")
        return 1
    print("\nsoak: passed: every byte echoed, every reply counted, resources back to baseline, "
          "every server exited 0")
    if args.keep:
        print(f"soak: logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
