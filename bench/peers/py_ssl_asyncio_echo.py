#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TLS echo server on asyncio streams (start_server with ssl=), for bench/compare.py.

py_asyncio_echo.py with TLS: one event loop; each connection is a coroutine that reads, writes and
drains, over asyncio's SSL protocol (the ssl module's SSLObject on memory BIOs). The handshake is
done before echo() is called; close() sends close_notify.

Server settings, the same in every TLS peer: TLS 1.2 minimum, the ssl module's default ciphers,
session tickets on (OpenSSL's default), no client certificate requested (CERT_NONE, the default of
PROTOCOL_TLS_SERVER); CPython already sets SSL_MODE_RELEASE_BUFFERS.

    py_ssl_asyncio_echo.py PORT CERT_CHAIN.pem KEY.pem   PORT 0: the kernel picks; prints
                                                          "listening on 127.0.0.1:PORT"
"""
import asyncio
import ssl
import sys


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:  # ConnectionError and ssl.SSLError included
        pass
    finally:
        writer.close()


def tls_context(chain, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    return context


async def serve(port, context):
    server = await asyncio.start_server(echo, "127.0.0.1", port, ssl=context)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: py_ssl_asyncio_echo.py PORT CERT_CHAIN.pem KEY.pem")
    asyncio.run(serve(int(sys.argv[1]), tls_context(sys.argv[2], sys.argv[3])))
