#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""UDP echo server on Python's socketserver.UDPServer, for bench/compare.py --udp: one datagram at
a time on the serving thread (no mixin), as the socketserver documentation's example does.

    py_udp_echo.py [PORT]    0 or nothing: the kernel picks; prints "listening on 127.0.0.1:PORT"
"""
import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with socketserver.UDPServer(("127.0.0.1", port), Echo) as server:
        print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
