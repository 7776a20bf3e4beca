#!/usr/bin/env python3
"""WebSocket echo + broadcast server on Python `websockets` (asyncio), a peer for
tools/bench/ws-bench.sh. Same behaviour as tools/ws-echo with --broadcast:

- a connection upgraded on `/` echoes every data message (text as text, binary as binary);
  in broadcast mode it is a subscriber instead (it only listens);
- a connection upgraded on `/pub` publishes every data message to all subscribers
  (`websockets.broadcast`: encoded once per recipient, written without waiting).

Defaults of the library are kept (they are what a user of the library gets), except
max_size (64 MiB, as ws-echo) and an uncompressed default when the client does not offer
permessage-deflate (ws-load does not offer it, so no connection is compressed).

Usage: py-ws-echo.py --port 9103 [--broadcast]
"""
import argparse
import asyncio
import resource
import sys

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9103)
    ap.add_argument("--broadcast", action="store_true")
    ap.add_argument("--backlog", type=int, default=1024)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    subscribers: set = set()

    async def handler(ws):
        try:
            await serve_one(ws)
        except ConnectionClosed:
            pass  # load clients end by dropping TCP: not worth a traceback per connection

    async def serve_one(ws):
        path = ws.request.path if ws.request is not None else "/"
        if args.broadcast and path == "/pub":
            async for message in ws:
                broadcast(subscribers, message)
            return
        if args.broadcast:
            subscribers.add(ws)
            try:
                async for _ in ws:  # subscribers only listen (as ws-echo's Subscriber)
                    pass
            finally:
                subscribers.discard(ws)
            return
        async for message in ws:
            await ws.send(message)

    async def run():
        async with serve(handler, args.host, args.port, max_size=64 << 20, backlog=args.backlog):
            print(f"py-ws-echo listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
            await asyncio.get_running_loop().create_future()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
