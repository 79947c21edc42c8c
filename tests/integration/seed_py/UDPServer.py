# SPDX-License-Identifier: MIT
"""The socketserver docs' UDPServer example (seed 003, lines 422-446), ported to Python 3.

Usage: UDPServer.py [HOST [PORT]]   (default: localhost 9999; PORT 0 picks a free port)
Prints "listening on HOST:PORT" to stderr once bound, so a test can find the port.
"""
import socketserver
import sys


class MyUDPHandler(socketserver.BaseRequestHandler):
    """
    This class works similar to the TCP handler class, except that
    self.request consists of a pair of data and client socket, and since
    there is no connection the client address must be given explicitly
    when sending data back via sendto().
    """

    def handle(self):
        data = self.request[0].strip()
        socket = self.request[1]
        print("%s wrote:" % self.client_address[0])
        print(data.decode(), flush=True)
        socket.sendto(data.upper(), self.client_address)


if __name__ == "__main__":
    HOST = sys.argv[1] if len(sys.argv) > 1 else "localhost"
    PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9999
    socketserver.UDPServer.allow_reuse_address = True
    with socketserver.UDPServer((HOST, PORT), MyUDPHandler) as server:
        print("listening on %s:%d" % server.server_address, file=sys.stderr, flush=True)
        server.serve_forever()
