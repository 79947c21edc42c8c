#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Echo server on asyncio streams (start_server), for bench/compare.py.

One event loop; each connection is a coroutine that reads, writes and drains (drain() is the
backpressure: it waits while the transport's buffer is over its high-water mark).

    py_asyncio_echo.py [PORT]   0 or nothing: the kernel picks; prints "listening on ..."
"""
import asyncio
import sys


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(port):
    server = await asyncio.start_server(echo, "127.0.0.1", port)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
