# SPDX-License-Identifier: MIT
"""The socketserver docs' TCP client (seed 003, lines 372-393), ported to Python 3.

Usage: TCPClient.py [--host HOST] [--port PORT] WORDS...   (default: localhost 9999)
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

# Create a socket (SOCK_STREAM means a TCP socket)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

# Connect to server and send data
sock.connect((HOST, PORT))
sock.sendall((data + "\n").encode())

# Receive data from the server and shut down
received = sock.recv(1024).decode()
sock.close()

print("Sent:     %s" % data)
print("Received: %s" % received)
