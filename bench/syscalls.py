#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Syscalls per message: why each server's CPU per message is what it is.

Runs each echo server of bench/compare.py (sockserv at the command's defaults and with
--timeout 0, every event-loop backend, and the peers), loads it with `sockserv bench -n N`
(50 connections, 64-byte ping-pong at depth 1 and 16), and counts the server's syscalls with
`perf stat -e raw_syscalls:sys_enter,...` attached to its PID. Counts do not depend on the
machine's noise the way times do, so one run is enough. Loopback only; every run is bounded in
messages and time.

  bench/syscalls.py [--build-dir build/release] [--messages 200000] [--only NAME,...]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the servers and their start/stop)

EVENTS = ["raw_syscalls:sys_enter", "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_sendto",
          "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_io_uring_enter",
          "syscalls:sys_enter_poll", "syscalls:sys_enter_ppoll", "syscalls:sys_enter_setsockopt"]
SHORT = ["all", "recv", "send", "epoll_wait", "io_uring_enter", "poll", "ppoll", "setsockopt"]


def perf_counts(path):
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[2] in EVENTS:
                try:
                    counts[parts[2]] = int(parts[0])
                except ValueError:
                    counts[parts[2]] = 0
    return counts


def measure(build, command, depth, messages, logdir, label):
    tool = os.path.join(build, "tools", "sockserv")
    with open(os.path.join(logdir, label + ".log"), "ab") as log:
        server = compare.Server(command, log)
        try:
            out = os.path.join(logdir, label + ".perf")
            perf = subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e", ",".join(EVENTS),
                                     "-p", str(server.proc.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # attached before the first connection (and its thread) exists
            done = subprocess.run(["taskset", "-c", "1", tool, "bench", server.address, "-c", "50",
                                   "-s", "64", "-p", str(depth), "-n", str(messages),
                                   "--duration", "60", "--quiet"],
                                  capture_output=True, text=True, timeout=120)
            perf.send_signal(2)  # SIGINT: perf prints its counts and exits
            perf.wait(timeout=30)
            if done.returncode != 0:
                return None
            return perf_counts(out)
        finally:
            server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(compare.ROOT, "build", "release"))
    parser.add_argument("--messages", type=int, default=200000)
    parser.add_argument("--only", default="", help="comma-separated server names (substrings)")
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    every = compare.servers(args.build_dir, os.cpu_count() or 1)
    # The poll backend too (compare.py leaves it out of its timed runs).
    for name, command in list(every):
        if name == "sockserv async ×1, io_uring":
            every.append(("sockserv async ×1, poll",
                          [c.replace("SOCKSERV_POLLER=io_uring", "SOCKSERV_POLLER=poll")
                           for c in command]))
    servers = [(n, c) for n, c in every
               if (not wanted or any(w in n for w in wanted)) and "Python" not in n]
    logdir = tempfile.mkdtemp(prefix="sockserv-syscalls-")
    print(f"Syscalls per message, {args.messages:,} 64-byte messages over 50 connections "
          "(perf stat on the server's PID).\n")
    print("| server | depth | " + " | ".join(SHORT) + " |")
    print("|---|---:|" + "---:|" * len(SHORT))
    for name, command in servers:
        for depth in (1, 16):
            label = f"{name}-{depth}".replace(" ", "_").replace(",", "").replace("×", "x")
            counts = measure(args.build_dir, command, depth, args.messages, logdir, label)
            if counts is None:
                print(f"| {name} | {depth} | " + " | ".join("-" for _ in SHORT) + " |")
                continue
            cells = [f"{counts.get(e, 0) / args.messages:.3f}" for e in EVENTS]
            print(f"| {name} | {depth} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
