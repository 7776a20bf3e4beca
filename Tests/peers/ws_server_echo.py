"""Independent WebSocket echo server (python-websockets) for testing our client.

Usage: ws_server_echo.py [--deflate]   Prints the port on stdout, serves until killed.
"""
import asyncio
import sys

from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    compression = "deflate" if "--deflate" in sys.argv else None
    async with serve(echo, "127.0.0.1", 0, compression=compression, max_size=2**24) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()

asyncio.run(main())
