#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Smoke test of `bench/compare.py --from-raw FILE --plot DIR` (ctest: compare_plot): from the
recorded fixtures in bench/testdata (made-up numbers, the structure --raw writes), the charts
are written, each is well-formed SVG, and it shows its title, the run's label and date, every
scenario's title and every server's name. Exit status 77 (ctest: skipped) without matplotlib."""
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

BENCH = os.path.dirname(os.path.abspath(__file__))
SVG = "{http://www.w3.org/2000/svg}"

PLAIN_SCENARIOS = ["64 B ping-pong, 50 connections, depth 1",
                   "64 B ping-pong, 50 connections, depth 16", "1 connection ping-pong (latency)",
                   "16 KiB bulk stream, both directions, 1 connection",
                   "16 KiB bulk stream, both directions, 10 connections"]
TLS_SCENARIOS = ["64 B ping-pong over TLS, 50 connections, depth 1",
                 "16 KiB bulk stream over TLS, both directions, 1 connection"]
HANDSHAKES = ["Full handshakes, ECDSA P-256 certificate (a new connection per message)",
              "Full handshakes, RSA-2048 certificate",
              "Resumed handshakes (TLS 1.3 session tickets, ECDSA certificate)"]
# fixture -> {chart file: (title, scenario titles, other text it must show)}
EXPECTED = {
    "sample-raw.json": {
        "cpu-per-message.svg": ("Server CPU per message", PLAIN_SCENARIOS, ["n/a"]),
        "throughput.svg": ("Throughput", PLAIN_SCENARIOS, ["messages/s", "MB/s"]),
        "memory-per-connection.svg": ("Server memory per held connection",
                                      ["10,000 held connections (server memory per connection)"],
                                      ["KiB per connection", "n/a"]),
    },
    "sample-tls-raw.json": {
        "tls-cpu-per-message.svg": ("Server CPU per message", TLS_SCENARIOS, []),
        "tls-throughput.svg": ("Throughput", TLS_SCENARIOS, []),
        "tls-memory-per-connection.svg": ("Server memory per held connection",
                                          ["10,000 idle TLS connections (server memory per "
                                           "connection)"], []),
        "tls-cpu-per-handshake.svg": ("Server CPU per TLS handshake", HANDSHAKES, []),
        "tls-handshakes.svg": ("TLS handshakes per second", HANDSHAKES, ["handshakes/s"]),
    },
}


def shown_text(path):
    """The text of every <text> element of the SVG (a parse error fails the test), its
    whitespace collapsed, so a title wrapped over two lines reads as one."""
    root = ET.parse(path).getroot()
    if root.tag != SVG + "svg":
        raise AssertionError(f"{path}: the root element is {root.tag}, not svg")
    texts = [" ".join(t.itertext()) for t in root.iter(SVG + "text")]
    return re.sub(r"\s+", " ", " ".join(texts))


def check(fixture, charts, directory):
    with open(os.path.join(BENCH, "testdata", fixture)) as f:
        raw = json.load(f)
    date = raw["meta"]["started"][:10]
    subprocess.run([sys.executable, os.path.join(BENCH, "compare.py"), "--from-raw",
                    os.path.join(BENCH, "testdata", fixture), "--plot", directory],
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    failures = []
    for name, (title, scenarios, others) in charts.items():
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            failures.append(f"{fixture}: {name} not written")
            continue
        text = shown_text(path)
        for wanted in [title, raw["meta"]["label"], date, *scenarios, *others, *raw["servers"]]:
            if wanted not in text:
                failures.append(f"{fixture}: {name} does not show {wanted!r}")
    return failures


def main():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"SKIP: no matplotlib in {sys.executable} (Debian: python3-matplotlib, "
              "scripts/bootstrap.sh bench)")
        return 77
    failures = []
    for fixture, charts in EXPECTED.items():
        with tempfile.TemporaryDirectory(prefix="sockserv-charts-") as directory:
            failures += check(fixture, charts, directory)
            unexpected = set(os.listdir(directory)) - set(charts)
            if unexpected:
                failures.append(f"{fixture}: unexpected files {sorted(unexpected)}")
    for failure in failures:
        print("FAIL:", failure)
    if not failures:
        print(f"ok: {sum(len(c) for c in EXPECTED.values())} charts")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
