#!/usr/bin/env python3
"""Scriptable HTTP/1.1 server for the HubHTTPClient and hubctl tests (standard library only).

Binds 127.0.0.1 on a port of the kernel's choosing and prints that port as its first line of
stdout, so no test ever races another for a port. With --record FILE, every request is
appended to FILE as a JSON line {method, path, headers: [[n, v]], body} before it is answered.

Built-in routes (query parameters in brackets):
  /echo                       200 JSON of the request as recorded
  /cl[?n=N]                   N bytes ('a'...) with Content-Length
  /chunked[?n=N&size=S]       N bytes in chunks of S bytes
  /until-close[?n=N]          N bytes, no Content-Length, then the connection closes
  /close-early                announces 100 bytes, sends 10, closes
  /garbage                    a line that is not HTTP, then closes
  /slow[?seconds=S]           waits S seconds, then 200
With --routes FILE (JSON list of {method, path, status, body?, headers?}; re-read on every
request), requests whose method
and path (with query, else without) match an entry get that canned response; `body` is sent as
JSON unless it is a string. With --tls-cert/--tls-key the server speaks HTTPS.
"""
import argparse
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECORD_FILE = None
LOCK = threading.Lock()
ROUTES = []
ROUTES_FILE = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        record = {"method": self.command, "path": self.path,
                  "headers": [[k, v] for k, v in self.headers.items()],
                  "body": body.decode("utf-8", "replace")}
        if RECORD_FILE:
            with LOCK, open(RECORD_FILE, "a") as f:
                f.write(json.dumps(record) + "\n")

        for route in current_routes():
            if route["method"] == self.command and route["path"] in (self.path, url.path):
                payload = route.get("body")
                if payload is None:
                    data, ctype = b"", None
                elif isinstance(payload, str):
                    data, ctype = payload.encode(), "text/plain"
                else:
                    data, ctype = json.dumps(payload).encode(), route.get("content_type", "application/json")
                return self.send_body(route["status"], data, ctype, route.get("headers", {}))

        n = int(query.get("n", ["5"])[0])
        if url.path == "/echo":
            return self.send_body(200, json.dumps(record).encode(), "application/json")
        if url.path == "/cl":
            return self.send_body(200, pattern(n), "application/octet-stream")
        if url.path == "/chunked":
            size = int(query.get("size", ["7"])[0])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            data = pattern(n)
            for i in range(0, len(data), size):
                piece = data[i:i + size]
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
            return
        if url.path == "/until-close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(pattern(n))
            self.close_connection = True
            return
        if url.path == "/close-early":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(pattern(10))
            self.close_connection = True
            return
        if url.path == "/garbage":
            self.wfile.write(b"220 smtp.example.com ESMTP ready\r\n")
            self.close_connection = True
            return
        if url.path == "/slow":
            time.sleep(float(query.get("seconds", ["5"])[0]))
            return self.send_body(200, b"late", "text/plain")
        self.send_body(404, b'{"code":"not_found"}', "application/problem+json")

    def send_body(self, status, data, ctype, headers=None):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def pattern(n):
    return bytes(97 + i % 26 for i in range(n))


def current_routes():
    """The canned routes, re-read from --routes on every request so a test can change them
    while the server runs (e.g. a JWKS that depends on the server's own port)."""
    if ROUTES_FILE:
        with open(ROUTES_FILE) as f:
            return json.load(f)
    return ROUTES


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--record")
    args = parser.parse_args()
    global RECORD_FILE, ROUTES_FILE
    RECORD_FILE = args.record
    ROUTES_FILE = args.routes
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    # Exit when the test closes our stdin (or dies), so no server outlives its test.
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
