# SPDX-License-Identifier: MIT
"""The socketserver docs' UDP client (seed 003, lines 448-465), ported to Python 3.

Usage: UDPClient.py [--host HOST] [--port PORT] WORDS...   (default: localhost 9999)
Unlike the seed it gives up after 10 s without a reply, as our C++ udp_client does.
"""
import socket
import sys

HOST, PORT = "localhost", 9999
words = sys.argv[1:]
while words[:1] in (["--host"], ["--port"]) and len(words) > 1:
    if words[0] == "--host":
        HOST = words[1]
    else:
        PORT = int(words[1])
    words = words[2:]
data = " ".join(words)

# SOCK_DGRAM is the socket type to use for UDP sockets
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(10)

# As you can see, there is no connect() call; UDP has no connections.
# Instead, data is directly sent to the recipient via sendto().
sock.sendto((data + "\n").encode(), (HOST, PORT))
received = sock.recv(1024).decode()

print("Sent:     %s" % data)
print("Received: %s" % received)
