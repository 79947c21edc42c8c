#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Echo server on Python's socketserver.ThreadingTCPServer, for bench/compare.py.

A thread per connection; the handler is the recv/sendall loop of the Socket HOWTO.

    py_threading_echo.py [PORT]   0 or nothing: the kernel picks; prints "listening on ..."
"""
import socketserver
import sys


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with Server(("127.0.0.1", port), EchoHandler) as server:
        print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
