#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The RESP example (examples/aio/resp_server.cpp) against a real redis-server, both loaded by
redis-benchmark (issue 13 item 10): throughput and the server's CPU per request for SET and
GET at pipeline depth 1 and 16.

    python3 bench/redis_compare.py --build-dir build/release [--repeats 3] [--quick]

The server runs pinned to CPU 0 (taskset -c 0), redis-benchmark to CPU 1. CPU per request is the
server process's utime+stime (/proc/PID/stat) over the run, divided by its requests. Every run
is bounded by -n. Each repeat starts both servers afresh and runs them in alternating order, so
ratios are taken within one repeat; the table gives medians of the repeats.
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def start(name, build, port):
    if name == "sockserv-resp":
        command = [os.path.join(build, "examples/aio/aio_resp_server"), "127.0.0.1", str(port)]
    else:
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--daemonize", "no", "--logfile", ""]
    proc = subprocess.Popen(["taskset", "-c", "0"] + command, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_listening(port, proc)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_benchmark(port, depth, requests, test):
    """One redis-benchmark run of one test; returns requests per second."""
    out = subprocess.run(
        ["taskset", "-c", "1", "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test,
         "-P", str(depth), "-n", str(requests), "-c", "50", "--csv"],
        capture_output=True, text=True, timeout=300, check=True).stdout
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0] == test.upper():
            return float(cells[1])
    raise RuntimeError(f"no {test} line in redis-benchmark's output:\n{out}")


def measure(name, build, depths, requests):
    port = free_port()
    proc = start(name, build, port)
    results = {}
    try:
        for depth in depths:
            for test in ("set", "get"):
                n = requests[depth]
                before = cpu_seconds(proc.pid)
                rps = run_benchmark(port, depth, n, test)
                used = cpu_seconds(proc.pid) - before
                results[(depth, test)] = (rps, used / n * 1e6)  # requests/s, µs CPU/request
    finally:
        stop(proc)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build/release")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small -n, one repeat")
    args = parser.parse_args()
    depths = (1, 16)
    requests = {1: 20000, 16: 100000} if args.quick else {1: 200000, 16: 1000000}
    repeats = 1 if args.quick else args.repeats
    names = ["sockserv-resp", "redis-server"]
    runs = []
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        runs.append({name: measure(name, args.build_dir, depths, requests) for name in order})
        print(f"repeat {r + 1}/{repeats} done", file=sys.stderr)

    print("| pipeline | test | server | requests/s | CPU µs/request | sockserv/redis rps | "
          "sockserv/redis CPU |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for depth in depths:
        for test in ("set", "get"):
            key = (depth, test)
            rps_ratio = statistics.median(
                run["sockserv-resp"][key][0] / run["redis-server"][key][0] for run in runs)
            cpu_ratio = statistics.median(
                run["sockserv-resp"][key][1] / run["redis-server"][key][1] for run in runs)
            for name in names:
                rps = statistics.median(run[name][key][0] for run in runs)
                cpu = statistics.median(run[name][key][1] for run in runs)
                ratios = (f"{rps_ratio:.2f} | {cpu_ratio:.2f}" if name == names[0] else " | ")
                print(f"| {depth} | {test.upper()} | {name} | {rps:,.0f} | {cpu:.2f} | {ratios} |")
    print(f"\n{repeats} repeat(s); -n {requests[1]:,} at depth 1, {requests[16]:,} at depth 16; "
          "50 clients; medians.")


if __name__ == "__main__":
    main()
