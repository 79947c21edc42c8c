#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TLS echo server on Python's socketserver.ThreadingTCPServer and ssl module, for bench/compare.py.

py_threading_echo.py with TLS: a thread per connection. Each accepted socket is wrapped in
get_request() with do_handshake_on_connect=False, so the handshake runs in the connection's own
thread (the accepting thread never waits for a client); the handler is then the recv/sendall loop.
The client's close_notify is answered with ours (unwrap()); a TCP EOF without one, a reset or a
failed handshake just closes the connection.

Server settings, the same in every TLS peer: TLS 1.2 minimum, the ssl module's default ciphers,
session tickets on (OpenSSL's default), no client certificate requested (CERT_NONE, the default of
PROTOCOL_TLS_SERVER); CPython already sets SSL_MODE_RELEASE_BUFFERS.

    py_ssl_threading_echo.py PORT CERT_CHAIN.pem KEY.pem   PORT 0: the kernel picks; prints
                                                            "listening on 127.0.0.1:PORT"
"""
import socketserver
import ssl
import sys


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            self.request.do_handshake()
            while data := self.request.recv(65536):
                self.request.sendall(data)
            self.request.unwrap()  # recv() returned b"": the client's close_notify; send ours
        except OSError:  # ssl.SSLError included: reset, EOF without close_notify, bad handshake
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address, handler, context):
        super().__init__(address, handler)
        self.context = context

    def get_request(self):
        sock, address = super().get_request()
        # suppress_ragged_eofs=False: a TCP EOF without close_notify raises instead of reading
        # as b"", so that only a real close_notify gets one back.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False,
                                        suppress_ragged_eofs=False), address


def tls_context(chain, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    return context


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: py_ssl_threading_echo.py PORT CERT_CHAIN.pem KEY.pem")
    context = tls_context(sys.argv[2], sys.argv[3])
    with Server(("127.0.0.1", int(sys.argv[1])), EchoHandler, context) as server:
        print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
