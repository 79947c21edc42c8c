# SPDX-License-Identifier: MIT
"""The socketserver docs' TCPServer example (seed 003, lines 313-343), ported to Python 3.

Usage: TCPServer.py [HOST [PORT]]   (default: localhost 9999; PORT 0 picks a free port)
Prints "listening on HOST:PORT" to stderr once bound, so a test can find the port.
"""
import socketserver
import sys


# [snippet:handler]
class MyTCPHandler(socketserver.BaseRequestHandler):
    """
    The RequestHandler class for our server.

    It is instantiated once per connection to the server, and must
    override the handle() method to implement communication to the
    client.
    """

    def handle(self):
        # self.request is the TCP socket connected to the client
        self.data = self.request.recv(1024).strip()
        print("%s wrote:" % self.client_address[0])
        print(self.data.decode(), flush=True)
        # just send back the same data, but upper-cased
        self.request.sendall(self.data.upper())
# [end:handler]


if __name__ == "__main__":
    HOST = sys.argv[1] if len(sys.argv) > 1 else "localhost"
    PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9999

    # Create the server, binding to localhost on port 9999
    socketserver.TCPServer.allow_reuse_address = True
    # [snippet:server]
    with socketserver.TCPServer((HOST, PORT), MyTCPHandler) as server:
        print("listening on %s:%d" % server.server_address, file=sys.stderr, flush=True)
        # Activate the server; this will keep running until you
        # interrupt the program with Ctrl-C
        server.serve_forever()
    # [end:server]
