"""A portal that stops reading: the slow-consumer tests' client, on a raw socket (an
independent, minimal RFC 6455 client, so nothing reads behind the test's back).

    ws_stall.py HOST PORT TOKEN ROOM STALL_SECONDS

Connects to /ws/customer with `Authorization: Bearer TOKEN` and a small receive buffer,
subscribes to ROOM, waits for the ack, prints READY on stderr, then reads nothing for
STALL_SECONDS. Afterwards it reads everything the hub sends until the connection ends or is
quiet for 3 s, and prints one JSON object: {"ack": {...}, "events": [offsets], "event_names":
{name: count}, "lagged": [dropped...], "close_code": int|null, "eof": bool}.
"""
import base64
import json
import os
import socket
import struct
import sys
import time


def frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def take(self, n):
        self.fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def message(self):
        b0, b1 = self.take(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.take(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.take(8))[0]
        return b0 & 0x0F, self.take(n)


def main():
    host, port, token, room, stall = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/customer HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
    reader = Reader(sock)
    while b"\r\n\r\n" not in reader.buf:
        reader.fill(len(reader.buf) + 1)
    head, reader.buf = reader.buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        print(json.dumps({"error": head.decode(errors="replace")}))
        return
    sock.sendall(frame(json.dumps({"type": "subscribe", "id": "s", "room": room})))
    out = {"ack": None, "events": [], "event_names": {}, "lagged": [], "close_code": None, "eof": False}
    while out["ack"] is None:
        opcode, payload = reader.message()
        if opcode == 1:
            msg = json.loads(payload)
            if msg.get("type") in ("ack", "error"):
                out["ack"] = msg
    print("READY", file=sys.stderr, flush=True)
    time.sleep(stall)
    sock.settimeout(3)
    try:
        while True:
            opcode, payload = reader.message()
            if opcode == 8:
                out["close_code"] = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                break
            if opcode != 1:
                continue
            msg = json.loads(payload)
            if msg.get("type") == "event":
                out["events"].append(msg["offset"])
                out["event_names"][msg["event"]] = out["event_names"].get(msg["event"], 0) + 1
            elif msg.get("type") == "lagged":
                out["lagged"].append(msg["dropped"])
    except (EOFError, ConnectionResetError):
        out["eof"] = True
    except socket.timeout:
        pass
    print(json.dumps(out), flush=True)


main()
