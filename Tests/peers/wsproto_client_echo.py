"""Independent WebSocket client (wsproto, sans-I/O, over a plain socket) against our echo.

Usage: wsproto_client_echo.py HOST PORT [PATH] [--deflate]
Prints a JSON line; exit 1 on mismatch.
"""
import json
import socket
import sys

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Request,
                            TextMessage)
from wsproto.extensions import PerMessageDeflate

host, port = sys.argv[1], int(sys.argv[2])
path = next((a for a in sys.argv[3:] if a.startswith("/")), "/")
extensions = [PerMessageDeflate()] if "--deflate" in sys.argv else []
sock = socket.create_connection((host, port), timeout=5)
ws = WSConnection(ConnectionType.CLIENT)
sock.sendall(ws.send(Request(host=f"{host}:{port}", target=path, extensions=extensions)))

def events():
    while True:
        data = sock.recv(65536)
        ws.receive_data(data or None)
        for e in ws.events():
            yield e
        if not data:
            return

stream = events()
accepted = None
for e in stream:
    if isinstance(e, AcceptConnection):
        accepted = e
        break
assert accepted is not None
results = []
for msg in ["wsproto says hi", b"\x00" * 1000 + b"\xff", "é" * 3000]:
    kind = TextMessage if isinstance(msg, str) else BytesMessage
    sock.sendall(ws.send(kind(data=msg)))
    buf = "" if isinstance(msg, str) else b""
    for e in stream:
        if isinstance(e, (TextMessage, BytesMessage)):
            buf += e.data
            if e.message_finished:
                break
    results.append(buf == msg)
sock.sendall(ws.send(CloseConnection(code=1000)))
code = None
for e in stream:
    if isinstance(e, CloseConnection):
        code = e.code
        break
ok = all(results) and code == 1000
print(json.dumps({"ok": ok, "results": results, "close_code": code,
                  "extensions": [x.name for x in accepted.extensions]}))
sys.exit(0 if ok else 1)
