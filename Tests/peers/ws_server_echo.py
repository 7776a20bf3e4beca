"""Independent WebSocket echo server (python-websockets) for testing our client.

Usage: ws_server_echo.py [--deflate] [--tls CERT KEY]
Prints the port on stdout, serves until killed. With --tls it serves wss:// with that
certificate and key.
"""
import asyncio
import ssl
import sys

from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    compression = "deflate" if "--deflate" in sys.argv else None
    context = None
    if "--tls" in sys.argv:
        i = sys.argv.index("--tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
    async with serve(echo, "127.0.0.1", 0, compression=compression, max_size=2**24, ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()

asyncio.run(main())
