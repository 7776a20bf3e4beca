"""Independent WebSocket client (python-websockets) against our server's echo endpoint.

Usage: ws_client_echo.py URL [--deflate]
Sends text, non-ASCII text, binary, empty and large messages; checks each echo; prints a JSON
line with what was negotiated. Exit 1 on any mismatch.
"""
import json
import sys

from websockets.sync.client import connect

url = sys.argv[1]
deflate = "--deflate" in sys.argv
messages = ["hello", "κόσμε ✓ 𝄞", b"\x00\x01\xfe\xff" * 64, "", "x" * 100_000, bytes(range(256)) * 400]
with connect(url, compression="deflate" if deflate else None, max_size=2**24, open_timeout=5) as ws:
    for m in messages:
        ws.send(m)
        got = ws.recv(timeout=5)
        if got != m:
            print(json.dumps({"ok": False, "sent": repr(m)[:80], "got": repr(got)[:80]}))
            sys.exit(1)
    ext = ws.response.headers.get("Sec-WebSocket-Extensions")
    ws.close()
    print(json.dumps({"ok": True, "extensions": ext, "close_code": ws.protocol.close_code}))
