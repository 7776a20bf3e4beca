"""Independent WebSocket echo server (wsproto, sans-I/O over plain sockets) for our client.

Usage: wsproto_server_echo.py [--deflate]   Prints the port, serves connections one after
another until killed.
"""
import socket
import sys

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Ping, Request,
                            TextMessage)
from wsproto.extensions import PerMessageDeflate

deflate = "--deflate" in sys.argv
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(8)
print(listener.getsockname()[1], flush=True)

def serve(sock):
    ws = WSConnection(ConnectionType.SERVER)
    text, data = [], []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        ws.receive_data(chunk)
        for event in ws.events():
            if isinstance(event, Request):
                extensions = [PerMessageDeflate()] if deflate else []
                sock.sendall(ws.send(AcceptConnection(extensions=extensions)))
            elif isinstance(event, TextMessage):
                text.append(event.data)
                if event.message_finished:
                    sock.sendall(ws.send(TextMessage(data="".join(text))))
                    text = []
            elif isinstance(event, BytesMessage):
                data.append(event.data)
                if event.message_finished:
                    sock.sendall(ws.send(BytesMessage(data=b"".join(data))))
                    data = []
            elif isinstance(event, Ping):
                sock.sendall(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                sock.sendall(ws.send(event.response()))
                return

while True:
    conn, _ = listener.accept()
    try:
        serve(conn)
    except Exception as error:  # a broken client must not stop the peer
        print("peer error:", error, file=sys.stderr)
    finally:
        conn.close()
