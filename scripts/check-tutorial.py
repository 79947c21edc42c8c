#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Keeps docs/tutorial/ honest: every code block is a built program's text, every output block
is what the program prints.

In a chapter, a marker line comes right before each fenced block:

  <!-- snippet: programs/tcp_server.cpp#handler -->     then a ```cpp block: the lines between
      `// [snippet:handler]` and `// [end:handler]` in that file, minus their common indentation
      (a ```python block, from a .py file, with `# [snippet:NAME]` and `# [end:NAME]`).
  <!-- output: programs/tcp_server.cpp ARGS... -->      then a ```text block: the standard output
      of the built program (<build>/<the file's path from the repository root, without .cpp>)
      run with ARGS. {tls_cert} and {tls_key} in ARGS become a fresh self-signed certificate
      for "localhost" and its key (made with the openssl command; without it, the block is
      skipped with a note). A program that exits with status 77 is skipped the same way (a
      build without the feature it shows).

A ```cpp or ```python block without a snippet marker, a ```text block without an output marker,
or a block in another language (but ```sh, commands for the reader) is an error: no code in the
tutorial that is not built or run, no output that is not checked.

  check-tutorial.py                       check the snippets (no build needed)
  check-tutorial.py --fix                 rewrite the snippet blocks from the sources
  check-tutorial.py --outputs BUILD_DIR   also run the programs and check the output blocks
  check-tutorial.py --outputs BUILD_DIR --fix   ... and rewrite the output blocks
Exit status 0 when everything matches, 1 otherwise (each difference is printed).
"""
import argparse
import difflib
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial"
MARKER = re.compile(r"^<!-- (snippet|output): (.+?) -->$")
FENCE = re.compile(r"^```(\w*)$")
RUN_TIMEOUT = 30  # seconds for one program; each is written to finish well within one
SKIPPED = 77  # a program's exit status for "cannot run in this build" (e.g. TLS without OpenSSL)


def snippet(source: pathlib.Path, name: str) -> str:
    """The marked region of `source`, dedented, with a final newline."""
    lines = source.read_text().splitlines()
    comment = "#" if source.suffix == ".py" else "//"
    starts = [i for i, l in enumerate(lines) if l.strip() == f"{comment} [snippet:{name}]"]
    ends = [i for i, l in enumerate(lines) if l.strip() == f"{comment} [end:{name}]"]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"{source.relative_to(ROOT)}: no single [snippet:{name}] ... [end:{name}]")
    body = lines[starts[0] + 1 : ends[0]]
    indent = min((len(l) - len(l.lstrip(" ")) for l in body if l.strip()), default=0)
    return "".join(l[indent:] + "\n" for l in body)


class Certificates:
    """A self-signed certificate for localhost, made once, on first use."""

    def __init__(self):
        self.dir = None

    def paths(self):
        if self.dir is None:
            if shutil.which("openssl") is None:
                return None
            self.dir = tempfile.TemporaryDirectory(prefix="tutorial-tls-")
            d = pathlib.Path(self.dir.name)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-days", "1", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost",
                            "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                           check=True, capture_output=True, timeout=RUN_TIMEOUT)
        d = pathlib.Path(self.dir.name)
        return {"tls_cert": str(d / "cert.pem"), "tls_key": str(d / "key.pem")}


def program_output(spec: str, build: pathlib.Path, certs: Certificates):
    """The stdout of the program `spec` names, or None when it cannot run here (skipped)."""
    words = shlex.split(spec)
    source = (TUTORIAL / words[0]).resolve()
    exe = build / source.relative_to(ROOT).with_suffix("")
    args = words[1:]
    if any("{tls_" in a for a in args):
        paths = certs.paths()
        if paths is None:
            return None
        args = [a.format(**paths) for a in args]
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if done.returncode == SKIPPED:
        return None
    if done.returncode != 0:
        raise ValueError(f"{exe} exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def check_chapter(md: pathlib.Path, build, fix: bool, certs: Certificates) -> list:
    """Checks (or fixes) one chapter; returns the list of problems."""
    lines = md.read_text().splitlines(keepends=True)
    problems, out, i = [], [], 0
    where = lambda n: f"{md.relative_to(ROOT)}:{n + 1}"
    pending = None  # (kind, argument, line number) of the marker just seen
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line.rstrip("\n"))
        f = FENCE.match(line.rstrip("\n"))
        if m:
            pending = (m.group(1), m.group(2), i)
            out.append(line)
            i += 1
            continue
        if not (f and f.group(1)):
            pending = None if line.strip() else pending
            out.append(line)
            i += 1
            continue
        # An opening fence: find its end.
        end = i + 1
        while end < len(lines) and lines[end].rstrip("\n") != "```":
            end += 1
        body = "".join(lines[i + 1 : end])
        lang = f.group(1)
        wanted = None
        try:
            if lang in ("cpp", "python"):
                if not pending or pending[0] != "snippet":
                    problems.append(f"{where(i)}: a {lang} block without a snippet marker")
                else:
                    path, _, name = pending[1].partition("#")
                    wanted = snippet((TUTORIAL / path).resolve(), name)
            elif lang == "text":
                if not pending or pending[0] != "output":
                    problems.append(f"{where(i)}: a text block without an output marker")
                elif build is not None:
                    wanted = program_output(pending[1], build, certs)
                    if wanted is None:
                        print(f"{where(i)}: skipped (no openssl, or exit status 77): {pending[1]}")
            elif lang != "sh":
                problems.append(f"{where(i)}: a {lang} block: only cpp, python, text and sh")
        except (ValueError, OSError, subprocess.SubprocessError) as e:
            problems.append(f"{where(i)}: {e}")
        if wanted is not None and wanted != body:
            if fix:
                body = wanted
            else:
                diff = difflib.unified_diff(body.splitlines(), wanted.splitlines(),
                                            "in the chapter", "from the program", lineterm="")
                problems.append(f"{where(i)}: {lang} block differs:\n" + "\n".join(diff))
        out += [line, body, lines[end] if end < len(lines) else "```\n"]
        pending = None
        i = end + 1
    if fix:
        md.write_text("".join(out))
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", metavar="BUILD_DIR", type=pathlib.Path,
                        help="run the built programs and check the output blocks")
    parser.add_argument("--fix", action="store_true", help="rewrite blocks that differ")
    options = parser.parse_args()
    build = options.outputs.resolve() if options.outputs else None
    certs = Certificates()
    chapters = sorted(TUTORIAL.glob("*.md"))
    problems = []
    for md in chapters:
        problems += check_chapter(md, build, options.fix, certs)
    for p in problems:
        print(p)
    what = "snippets and outputs" if build else "snippets"
    print(f"check-tutorial: {len(chapters)} chapters, {what}: "
          + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
