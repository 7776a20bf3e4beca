"""Randomized soak and fault driver for the command queue (issue 9), run by
Tests/HubServerTests/QueueSoakTests.swift against real hub processes.

    queue_soak.py --nodes 127.0.0.1:P1,127.0.0.1:P2 --admin-token T --jwt-secret S
                  --supabase-url U --out REPORT.json [--mode soak|embedded] [options]

soak mode: one org with an operator and an approver (Supabase HS256 JWTs minted here), the
org policy auto-approves some command kinds; N devices, each with a session the approver
approved; half of them work over REST (long-poll claim, extend, progress, release, result),
half over /ws/device (claim on `command.available`, react to `command.cancel`). The operator
proposes commands at a fixed rate with idempotency keys (some proposals are sent twice, some
twice at once to both nodes), the approver approves or rejects those that need it, some are
canceled, some sessions closed. Devices randomly let leases lapse, release, abandon, answer
twice, answer with a foreign lease. Faults are asked of the test through the control channel:
a line `CONTROL <n> <action>` on stdout, answered by `<n> ok` on stdin (the test kills and
restarts a hub, or flushes Redis). Every 5xx and connection error is retried with backoff on
either node; a 401 makes the device authenticate again.

After the load the driver waits until the hub reports nothing unfinished, then writes a report
(every proposal and its outcome, every delivery, lease and result the devices saw, the API's
final state of each command, the violations seen from the outside, counters). The test checks
the report against the database.

embedded mode: one hub on the embedded store; commands queued, claimed (leases held), finished
and pending approval; the hub is killed (-9) and restarted on its data directory; the queue must
still hold every unfinished command: queued ones claimable again, held ones only after their
lease lapsed, pending ones once approved.

Only websockets and the standard library are used (HTTP/1.1 over asyncio streams here).
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import sys
import time
import uuid
from datetime import datetime

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

TERMINAL = {"succeeded", "failed", "rejected", "canceled", "expired", "dead_lettered"}
UNFINISHED = {"pending_approval", "queued", "claimed"}
AUTO_KINDS = ["diag.ping", "diag.collect"]
MANUAL_KINDS = ["fw.update", "shell.exec"]
PRIORITIES = ["critical", "default", "default", "bulk"]
# Tolerance for comparing the hub's lease deadlines with this process's clock (same machine).
TOL = 0.25

T0 = time.monotonic()


def log(*parts):
    print(f"[{time.monotonic() - T0:7.2f}]", *parts, file=sys.stderr, flush=True)


def now():
    return time.time()


def parse_time(text):
    """RFC 3339 (with ms and Z) → Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_jwt(secret, supabase_url, user, ttl=3600):
    """An HS256 Supabase access token, with the claims Supabase issues."""
    t = int(now())
    claims = {"sub": user, "aud": "authenticated", "role": "authenticated", "iss": supabase_url + "/auth/v1",
              "iat": t, "exp": t + ttl, "email": "soak@example.com"}
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(mac)}"


# --------------------------------------------------------------------------------------------
# HTTP/1.1 over asyncio streams, keep-alive, one request at a time per connection.

class NetError(Exception):
    pass


class Resp:
    def __init__(self, status, headers, body, node):
        self.status = status
        self.headers = headers
        self.body = body
        self.node = node
        self._json = False

    @property
    def json(self):
        if self._json is False:
            try:
                self._json = json.loads(self.body) if self.body else None
            except ValueError:
                self._json = None
        return self._json

    def text(self, n=400):
        return self.body[:n].decode("utf-8", "replace")


class Conn:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass


class HTTPPool:
    def __init__(self, nodes):
        self.nodes = nodes
        self.idle = {i: [] for i in range(len(nodes))}

    async def _exchange(self, conn, node, method, path, headers, body):
        host, port = self.nodes[node]
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        for k, v in headers.items():
            lines.append(f"{k}: {v}")
        if body is not None or method in ("POST", "PATCH", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        conn.writer.write(data)
        await conn.writer.drain()
        status_line = await conn.reader.readline()
        if not status_line:
            raise NetError("connection closed before the status line")
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise NetError(f"bad status line {status_line!r}")
        status = int(parts[1])
        rheaders = {}
        while True:
            line = await conn.reader.readline()
            if not line:
                raise NetError("connection closed in the head")
            if line in (b"\r\n", b"\n"):
                break
            k, _, v = line.decode("latin-1").partition(":")
            rheaders[k.strip().lower()] = v.strip()
        keep = rheaders.get("connection", "").lower() != "close"
        if "content-length" in rheaders:
            n = int(rheaders["content-length"])
            rbody = await conn.reader.readexactly(n) if n else b""
        elif "chunked" in rheaders.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int((await conn.reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await conn.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(await conn.reader.readexactly(size))
                await conn.reader.readline()
            rbody = b"".join(chunks)
        elif status in (204, 304) or method == "HEAD":
            rbody = b""
        else:
            rbody = await conn.reader.read()
            keep = False
        return Resp(status, rheaders, rbody, node), keep

    async def request(self, node, method, path, headers=None, body=None, timeout=15.0):
        headers = dict(headers or {})
        pool = self.idle[node]
        conn = pool.pop() if pool else None
        try:
            if conn is None:
                host, port = self.nodes[node]
                r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
                conn = Conn(r, w)
            resp, keep = await asyncio.wait_for(self._exchange(conn, node, method, path, headers, body), timeout=timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, NetError, ConnectionError) as e:
            if conn is not None:
                conn.close()
            raise NetError(f"{type(e).__name__}: {e}") from None
        if keep and len(pool) < 64:
            pool.append(conn)
        else:
            conn.close()
        return resp


# --------------------------------------------------------------------------------------------
# What the driver saw.

class Lease:
    def __init__(self, cid, token, attempt, expires, t_sent, t_recv, device, via, node):
        self.cid = cid
        self.token = token
        self.attempt = attempt
        self.expires = expires          # the hub's deadline as last confirmed (Unix s)
        self.expiry_uncertain = False   # an extension may have happened without our knowing
        self.t_sent = t_sent            # the claim request left at
        self.t_recv = t_recv            # its answer arrived at
        self.end_sent = None            # a release/result for this lease left at
        self.device = device
        self.via = via
        self.node = node
        self.outcome = None             # what the device did with it
        self.item = None                # the claimed item as the hub sent it

    def to_json(self):
        return {"token": self.token, "attempt": self.attempt, "expires": self.expires, "t_sent": self.t_sent,
                "t_recv": self.t_recv, "via": self.via, "outcome": self.outcome, "expiry_uncertain": self.expiry_uncertain}


class Cmd:
    def __init__(self, cid):
        self.id = cid
        self.nonce = None
        self.device = None
        self.session = None
        self.kind = None
        self.needs_approval = None
        self.vt = None
        self.ttl = None
        self.max_attempts = None
        self.accepted_at = None
        self.expires_at = None     # the command's TTL deadline as the hub answered it (Unix s)
        self.leases = []
        self.results_ok = []       # [{lease, status, exit_code, t_sent, t_recv}]
        self.results_maybe = []    # attempts whose outcome is unknown (gave up)
        self.results_refused = []  # [{lease, code, state}]
        self.cancel = None         # {"outcome": ok|maybe|refused, "state", "t_sent", "t_recv"}
        self.decision = None       # {"op": approve|reject, "outcome", "state", "t_sent", "t_recv"}
        self.terminal_known_at = None  # when the driver first learned (from an answer) that it is terminal
        self.api_state = None
        self.cancel_pushes = 0

    def learn_terminal(self, t):
        if self.terminal_known_at is None or t < self.terminal_known_at:
            self.terminal_known_at = t

    def to_json(self):
        return {"nonce": self.nonce, "device_id": self.device, "session_id": self.session, "kind": self.kind,
                "needs_approval": self.needs_approval, "visibility_timeout_seconds": self.vt, "ttl_seconds": self.ttl,
                "max_attempts": self.max_attempts, "accepted_at": self.accepted_at, "expires_at": self.expires_at,
                "deliveries": [l.to_json() for l in self.leases],
                "results_ok": self.results_ok, "results_maybe": self.results_maybe, "results_refused": self.results_refused,
                "cancel": self.cancel, "decision": self.decision, "api_state": self.api_state,
                "cancel_pushes": self.cancel_pushes}


class Stats(dict):
    def inc(self, key, n=1):
        self[key] = self.get(key, 0) + n


# --------------------------------------------------------------------------------------------

class Driver:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.nodes = []
        for part in args.nodes.split(","):
            host, _, port = part.rpartition(":")
            self.nodes.append((host or "127.0.0.1", int(port)))
        self.pool = HTTPPool(self.nodes)
        self.stats = Stats()
        self.violations = []
        self.info = []
        self.proposals = []
        self.cmds = {}
        self.sessions = {}           # session id → device
        self.closed_sessions = {}    # session id → {"t_sent", "t_recv", "outcome"}
        self.devices = []
        self.stop = asyncio.Event()
        self.load_over = False
        self.settled_at = None
        self.fault_windows = []      # [{"action", "start", "end"}]
        self.control_seq = 0
        self.control_waiters = {}
        self.tasks = set()
        self.validator = load_validator(args.schemas) if args.schemas else None
        self.org = None
        self.operator = str(uuid.uuid4())
        self.approver = str(uuid.uuid4())
        self.auto_decide = True

    # ---------------------------------------------------------------- bookkeeping

    def violation(self, kind, detail, cid=None):
        entry = {"kind": kind, "detail": detail}
        if cid:
            entry["command_id"] = cid
        self.violations.append(entry)
        log("VIOLATION", kind, cid or "", detail)

    def note(self, kind, detail, cid=None):
        entry = {"kind": kind, "detail": detail}
        if cid:
            entry["command_id"] = cid
        self.info.append(entry)

    def cmd(self, cid):
        c = self.cmds.get(cid)
        if c is None:
            c = self.cmds[cid] = Cmd(cid)
        return c

    def spawn(self, coro, name="task"):
        async def guarded():
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug of the driver: it must fail the test, visibly
                import traceback
                self.violation("driver_error", f"{name}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
        t = asyncio.get_running_loop().create_task(guarded())
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    def in_fault_window(self, t):
        return any(w["start"] - 1 <= t <= (w["end"] or now()) + 1 for w in self.fault_windows)

    def is_queue_loss(self, action):
        """A fault that loses the hot queue (and every lease in it): a Redis flush, or a restart
        of a hub on the embedded store."""
        return action == "flushall" or (self.args.mode == "embedded" and action.startswith("kill-restart"))

    def flushed_after(self, t):
        """Whether the hot queue was lost (flushed, or an embedded hub restarted) after time t."""
        return any(self.is_queue_loss(w["action"]) and w["start"] >= t - 1 for w in self.fault_windows)

    def queue_back_before(self, t):
        """Whether every queue loss before t had been answered (the hub back) by t."""
        return all(w["end"] is not None and w["end"] <= t for w in self.fault_windows
                   if self.is_queue_loss(w["action"]) and w["start"] <= t)

    def check_old_lease_result(self, c, lease, status, body, t_sent, t_recv):
        """docs/queue.md, "When the hot queue is lost": a device that still runs a command whose
        lease the lost queue issued "can report its result until the redelivery is claimed".
        A refusal is a violation when the lease was issued before a loss, the result sent after
        the hub was back, nothing else of the command was claimed before the answer, the lease's
        own deadline and the command's TTL had not passed, and the command had not ended."""
        if status != 409 or not self.flushed_after(lease.t_recv) or not self.queue_back_before(t_sent):
            return
        if body.get("state") not in ("queued", "claimed") or lease.expiry_uncertain or t_recv > lease.expires - TOL:
            return
        if c.expires_at is None or t_recv > c.expires_at - TOL or c.cancel is not None:
            return
        if any(other is not lease and other.t_sent < t_recv for other in c.leases):
            return
        self.violation("old_lease_result_refused",
                       f"result with the lease of attempt {lease.attempt} (issued before the queue was lost, live for "
                       f"{lease.expires - t_recv:.2f} s more, no redelivery claimed) refused: {json.dumps(body)[:200]}", c.id)

    # ---------------------------------------------------------------- control channel

    async def control_reader(self):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                return
            parts = line.decode().strip().split(" ", 1)
            fut = self.control_waiters.pop(parts[0], None)
            if fut and not fut.done():
                fut.set_result(parts[1] if len(parts) > 1 else "")

    async def control(self, action, wait=True):
        """Asks the test to do `action` (kill-restart N, flushall); returns its answer."""
        self.control_seq += 1
        key = str(self.control_seq)
        fut = asyncio.get_running_loop().create_future()
        self.control_waiters[key] = fut
        window = {"action": action, "start": now(), "end": None}
        self.fault_windows.append(window)
        log("CONTROL", action)
        print(f"CONTROL {key} {action}", flush=True)

        async def finish():
            answer = await asyncio.wait_for(fut, timeout=120)
            window["end"] = now()
            log("CONTROL done", action, answer)
            words = answer.split()
            if not words or words[0] != "ok":
                self.violation("control_failed", f"{action}: {answer}")
                return answer
            # "ok port=N": a restarted hub listens on a new port (hubs bind port 0).
            for w in words[1:]:
                if w.startswith("port=") and action.startswith("kill-restart "):
                    i = int(action.split()[1])
                    self.nodes[i] = (self.nodes[i][0], int(w[5:]))
                    for conn in self.pool.idle[i]:
                        conn.close()
                    self.pool.idle[i] = []
            return answer
        if wait:
            return await finish()
        self.spawn(finish(), "control " + action)

    # ---------------------------------------------------------------- HTTP with retries

    async def call(self, method, path, *, body=None, bearer=None, node=None, deadline=30.0, timeout=15.0,
                   retry=True, headers=None):
        """One logical request: retried on connection errors, 5xx and 429 (on either node) until
        `deadline`. Returns (resp or None, maybe): maybe is True when an attempt may have reached
        the hub without an answer we saw (a lost answer, a 5xx)."""
        h = dict(headers or {})
        if bearer:
            h["Authorization"] = f"Bearer {bearer}"
        data = None
        if body is not None:
            h["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        node = self.rng.randrange(len(self.nodes)) if node is None else node
        end = now() + deadline
        backoff = 0.05
        maybe = False
        while True:
            try:
                resp = await self.pool.request(node, method, path, h, data, timeout=timeout)
            except NetError as e:
                self.stats.inc("net_errors")
                maybe = True
                resp = None
                err = str(e)
            if resp is not None:
                if resp.status < 500 and resp.status != 429:
                    return resp, maybe
                self.stats.inc(f"http_{resp.status}")
                if resp.status >= 500:
                    maybe = True
                err = f"{resp.status} {resp.text(200)}"
            if not retry or now() + backoff > end:
                if resp is not None and resp.status >= 500:
                    self.note("gave_up", f"{method} {path}: {err}")
                return resp if (resp is not None and not retry) else None, maybe
            wait = backoff * (0.5 + self.rng.random())
            if resp is not None and resp.status == 429:
                try:
                    wait = max(wait, min(2.0, float(resp.headers.get("retry-after", "1"))))
                except ValueError:
                    pass
            await asyncio.sleep(wait)
            backoff = min(1.0, backoff * 2)
            if len(self.nodes) > 1 and self.rng.random() < 0.7:
                node = (node + 1) % len(self.nodes)

    async def must(self, status, method, path, **kw):
        resp, _ = await self.call(method, path, **kw)
        if resp is None or resp.status != status:
            raise RuntimeError(f"{method} {path}: expected {status}, got {resp.status if resp else 'no answer'}: "
                               f"{resp.text() if resp else ''}")
        return resp.json

    # ---------------------------------------------------------------- set-up

    def jwt(self, user):
        return mint_jwt(self.args.jwt_secret, self.args.supabase_url, user)

    async def setup(self, n_devices, ws_fraction):
        a = self.args
        org = await self.must(201, "POST", "/api/v1/admin/orgs", bearer=a.admin_token,
                              body={"name": f"Soak {uuid.uuid4().hex[:8]}"})
        self.org = org["id"]
        patched = await self.must(200, "PATCH", f"/api/v1/admin/orgs/{self.org}", bearer=a.admin_token,
                                  body={"auto_approved_kinds": AUTO_KINDS})
        if sorted(patched.get("auto_approved_kinds") or []) != sorted(AUTO_KINDS):
            self.violation("contract", f"PATCH org answered auto_approved_kinds={patched.get('auto_approved_kinds')}")
        for user, role in ((self.operator, "operator"), (self.approver, "approver")):
            await self.must(201, "POST", f"/api/v1/admin/orgs/{self.org}/members", bearer=a.admin_token,
                            body={"user_id": user, "role": role})
        self.op_jwt = self.jwt(self.operator)
        self.ap_jwt = self.jwt(self.approver)

        sem = asyncio.Semaphore(12)

        async def make(i):
            async with sem:
                mode = "ws" if i < int(n_devices * ws_fraction) else "rest"
                p = await self.must(201, "POST", "/api/v1/customer/devices/provision", bearer=self.op_jwt,
                                    body={"org_id": self.org, "name": f"soak-{i}"})
                r = await self.must(201, "POST", "/api/v1/device/register",
                                    body={"activation_code": p["activation_code"], "agent_version": "soak"})
                dev = Device(self, i, r["device_id"], r["device_secret"], mode)
                await dev.authenticate()
                s = await self.must(201, "POST", "/api/v1/customer/sessions", bearer=self.op_jwt,
                                    body={"device_id": dev.id, "reason": "soak"})
                if s.get("state") != "pending_approval":
                    self.violation("contract", f"new session state {s.get('state')}")
                s = await self.must(200, "POST", f"/api/v1/customer/sessions/{s['id']}/approve", bearer=self.ap_jwt,
                                    body={"note": "ok"})
                if s.get("state") != "active":
                    self.violation("contract", f"approved session state {s.get('state')}")
                dev.session = s["id"]
                self.sessions[dev.session] = dev
                return dev

        self.devices = list(await asyncio.gather(*(make(i) for i in range(n_devices))))
        self.devices.sort(key=lambda d: d.index)
        # Four eyes: the requester of a session may not approve it (the org did not allow it).
        p = await self.must(201, "POST", "/api/v1/customer/devices/provision", bearer=self.op_jwt,
                            body={"org_id": self.org, "name": "four-eyes-probe"})
        r = await self.must(201, "POST", "/api/v1/device/register", body={"activation_code": p["activation_code"]})
        probe = await self.must(201, "POST", "/api/v1/customer/sessions", bearer=self.ap_jwt,
                                body={"device_id": r["device_id"], "reason": "four eyes probe"})
        resp, _ = await self.call("POST", f"/api/v1/customer/sessions/{probe['id']}/approve", bearer=self.ap_jwt, body={})
        if resp is None or resp.status != 403:
            self.violation("contract", f"requester approving own session: {resp.status if resp else None} {resp.text() if resp else ''}")
        await self.call("POST", f"/api/v1/customer/sessions/{probe['id']}/close", bearer=self.op_jwt)
        log(f"set up org {self.org}: {n_devices} devices ({sum(d.mode == 'ws' for d in self.devices)} on /ws/device)")

    # ---------------------------------------------------------------- the operator

    def command_body(self, nonce, kind, key, ttl, vt, max_attempts):
        body = {"kind": kind, "args": {"nonce": nonce, "note": "soak"}, "priority": self.rng.choice(PRIORITIES),
                "ttl_seconds": ttl, "max_attempts": max_attempts, "visibility_timeout_seconds": vt}
        if key is not None:
            body["idempotency_key"] = key
        return body

    async def propose(self, dev, kind=None, ttl=None, vt=None, max_attempts=None, key_mode=None):
        rng = self.rng
        kind = kind or (rng.choice(AUTO_KINDS) if rng.random() < 0.55 else rng.choice(MANUAL_KINDS))
        ttl = ttl or rng.choice(self.args.ttls)
        vt = vt or rng.choice(self.args.vts)
        max_attempts = max_attempts or rng.choice([1, 2, 3, 3])
        if key_mode is None:
            r = rng.random()
            key_mode = "none" if r < 0.1 else "twice" if r < 0.22 else "race" if r < 0.28 else "once"
        nonce = str(uuid.uuid4())
        key = None if key_mode == "none" else f"k-{uuid.uuid4().hex}"
        body = self.command_body(nonce, kind, key, ttl, vt, max_attempts)
        sid = dev.session
        path = f"/api/v1/customer/sessions/{sid}/commands"
        t_sent = now()
        prop = {"nonce": nonce, "key": key, "session_id": sid, "device_id": dev.id, "kind": kind, "mode": key_mode,
                "outcome": None, "status": None, "id": None, "answers": [], "t_sent": t_sent}
        self.proposals.append(prop)
        self.stats.inc("proposals")

        async def one(node=None):
            resp, maybe = await self.call("POST", path, body=body, bearer=self.op_jwt, node=node,
                                          retry=key is not None)
            if resp is None:
                prop["answers"].append({"status": None, "maybe": maybe})
                return None
            replayed = resp.headers.get("idempotent-replayed", "").lower() == "true"
            j = resp.json or {}
            prop["answers"].append({"status": resp.status, "id": j.get("id"), "replayed": replayed, "maybe": maybe,
                                    "code": j.get("code"), "state": j.get("state")})
            return resp

        if key_mode == "race":
            answers = await asyncio.gather(one(0), one(len(self.nodes) - 1))
        else:
            answers = [await one()]
            if key_mode == "twice" and answers[0] is not None and answers[0].status in (200, 201):
                answers.append(await one())
        ok = [r for r in answers if r is not None and r.status in (200, 201)]
        if ok:
            ids = {r.json.get("id") for r in ok}
            first = ok[0].json
            if len(ids) != 1:
                self.violation("idempotency", f"one key, several ids: {sorted(map(str, ids))} answers={prop['answers']}")
            created = [r for r in ok if r.status == 201]
            if len(created) > 1:
                self.violation("idempotency", f"two 201 for one idempotency key {key}: {prop['answers']}", first.get("id"))
            for r in ok:
                rep = r.headers.get("idempotent-replayed", "").lower() == "true"
                if r.status == 200 and not rep:
                    self.violation("contract", f"200 on propose without Idempotent-Replayed: true ({prop['answers']})", first.get("id"))
                if r.status == 201 and rep:
                    self.violation("contract", f"201 with Idempotent-Replayed ({prop['answers']})", first.get("id"))
            if key is None and any(r.status == 200 for r in ok):
                self.violation("idempotency", f"replay without a key: {prop['answers']}")
            if key_mode == "twice" and len(ok) == 2 and ok[1].status != 200:
                self.violation("idempotency", f"a sequential retry with the same key was not replayed: {prop['answers']}", first.get("id"))
            cid = first["id"]
            prop["outcome"], prop["status"], prop["id"] = "accepted", ok[0].status, cid
            self.stats.inc("accepted")
            self.stats.inc("replays", sum(1 for r in ok if r.status == 200))
            c = self.cmd(cid)
            if c.nonce is not None and c.nonce != nonce:
                self.violation("idempotency", f"id {cid} answered for two proposals ({c.nonce}, {nonce})", cid)
            c.nonce, c.device, c.session, c.kind = nonce, dev.id, sid, kind
            c.vt, c.ttl, c.max_attempts, c.accepted_at = vt, ttl, max_attempts, t_sent
            try:
                c.expires_at = parse_time(first["expires_at"])
            except (KeyError, TypeError, ValueError):
                self.violation("contract", f"command expires_at {first.get('expires_at')!r}", cid)
            c.needs_approval = kind not in AUTO_KINDS
            self.check_command_shape(first, body, dev, c, fresh=ok[0].status == 201)
            for lease in c.leases:   # delivered before this answer was read
                if getattr(lease, "item", None) is not None:
                    self.check_delivery(c, lease)
            if c.needs_approval and first.get("state") == "pending_approval" and self.auto_decide:
                self.spawn(self.decide(c), "decide")
            return c
        hard = [r for r in answers if r is not None and r.status < 500]
        if hard:
            r = hard[0]
            prop["outcome"], prop["status"] = "refused", r.status
            j = r.json or {}
            self.stats.inc(f"propose_{r.status}")
            if r.status == 409 and j.get("state") and sid in self.closed_sessions:
                return None
            self.violation("propose_refused", f"{r.status} {r.text()} (session {sid}, key {key})")
            return None
        prop["outcome"] = "uncertain"
        self.stats.inc("propose_uncertain")
        return None

    def check_delivery(self, c, lease):
        """The checks of a delivery that need the command as proposed."""
        item, cid = lease.item, c.id
        if c.device != lease.device:
            self.violation("foreign_delivery", f"device {lease.device} got a command of device {c.device}", cid)
        if (item.get("args") or {}).get("nonce") != c.nonce:
            self.violation("contract", f"claimed args {item.get('args')} do not carry nonce {c.nonce}", cid)
        if item["kind"] != c.kind:
            self.violation("contract", f"claimed kind {item['kind']} != {c.kind}", cid)
        if c.max_attempts and item["attempt"] > c.max_attempts:
            self.violation("attempts", f"attempt {item['attempt']} > max_attempts {c.max_attempts}", cid)
        if c.needs_approval and (c.decision is None or c.decision.get("op") != "approve"):
            self.violation("unapproved_delivery", f"delivered without an approval request (decision {c.decision})", cid)
        if c.decision and c.decision.get("op") == "reject" and c.decision.get("outcome") == "ok":
            self.violation("rejected_delivery", "a rejected command was delivered", cid)

    def check_command_shape(self, j, body, dev, c, fresh):
        want = {"kind": body["kind"], "device_id": dev.id, "session_id": dev.session, "org_id": self.org,
                "priority": body["priority"], "ttl_seconds": body["ttl_seconds"], "max_attempts": body["max_attempts"],
                "visibility_timeout_seconds": body["visibility_timeout_seconds"]}
        for k, v in want.items():
            if j.get(k) != v:
                self.violation("contract", f"command field {k}: {j.get(k)!r}, expected {v!r}", c.id)
        if j.get("args") != body["args"]:
            self.violation("contract", f"command args {j.get('args')!r} != {body['args']!r}", c.id)
        expected_state = "pending_approval" if c.needs_approval else "queued"
        # A replay may show a later state; the 201 of a new command shows where it starts.
        if fresh and j.get("state") != expected_state:
            self.violation("contract", f"new command state {j.get('state')} (kind {c.kind}, expected {expected_state})", c.id)
        if j.get("needs_approval") != c.needs_approval:
            self.violation("contract", f"needs_approval {j.get('needs_approval')} for kind {c.kind} (auto kinds {AUTO_KINDS})", c.id)
        for field in ("proposed_by", "decided_by", "decided_at", "expires_at", "attempts", "lease_expires_at", "exit_code",
                      "output", "result", "finished_at", "created_at", "updated_at"):
            if field not in j:
                self.violation("contract", f"command without field {field}", c.id)

    async def decide(self, c):
        rng = self.rng
        await asyncio.sleep(rng.uniform(0.1, 1.5))
        r = rng.random()
        if r < 0.06:
            c.decision = {"op": "none"}
            return                       # left pending: it must expire at its TTL
        op = "reject" if r < 0.16 else "approve"
        t_sent = now()
        c.decision = {"op": op, "outcome": "maybe", "t_sent": t_sent}
        resp, maybe = await self.call("POST", f"/api/v1/customer/commands/{c.id}/{op}", bearer=self.ap_jwt, body={"note": "soak"})
        t_recv = now()
        c.decision["t_recv"] = t_recv
        if resp is None:
            return
        j = resp.json or {}
        if resp.status == 200:
            c.decision["outcome"] = "ok"
            want = "rejected" if op == "reject" else "queued"
            state = j.get("state")
            c.decision["state"] = state
            self.stats.inc("approved" if op == "approve" else "rejected")
            if op == "reject":
                c.learn_terminal(t_recv)
            if state != want and not (op == "approve" and state in ("claimed",) | TERMINAL):
                self.violation("contract", f"{op} answered state {state}", c.id)
            if j.get("decided_by") != self.approver:
                self.violation("contract", f"{op}: decided_by {j.get('decided_by')} != approver", c.id)
        elif resp.status == 409:
            c.decision["outcome"] = "refused"
            c.decision["state"] = j.get("state")
            if j.get("state") is None:
                self.violation("contract", f"409 on {op} without state: {resp.text()}", c.id)
            elif maybe and op == "approve" and j.get("state") in ("queued", "claimed"):
                # An earlier attempt reached a node that died before answering: it applied the
                # approval, and this retry found it done.
                c.decision["outcome"] = "ok"
                self.stats.inc("approved")
            elif j.get("state") not in TERMINAL:
                # Only a command that already ended (canceled, expired, session closed) may refuse a decision.
                self.violation("decision_refused", f"409 on {op} of a command in state {j.get('state')}", c.id)
        else:
            c.decision["outcome"] = f"status {resp.status}"
            self.violation("decision_refused", f"{op}: {resp.status} {resp.text()}", c.id)

    async def cancel(self, c):
        t_sent = now()
        c.cancel = {"outcome": "maybe", "t_sent": t_sent}
        self.stats.inc("cancels_sent")
        resp, maybe = await self.call("POST", f"/api/v1/customer/commands/{c.id}/cancel", bearer=self.op_jwt)
        t_recv = now()
        c.cancel["t_recv"] = t_recv
        if resp is None:
            return
        j = resp.json or {}
        c.cancel["state"] = j.get("state")
        if resp.status == 200:
            c.cancel["outcome"] = "ok"
            c.learn_terminal(t_recv)
            self.stats.inc("canceled")
            if j.get("state") != "canceled":
                self.violation("contract", f"cancel answered 200 with state {j.get('state')}", c.id)
        elif resp.status == 409:
            c.cancel["outcome"] = "refused"
            st = j.get("state")
            if st not in TERMINAL:
                self.violation("contract", f"cancel refused with state {st}: {resp.text()}", c.id)
            elif st == "canceled" and not maybe and c.id not in self.canceled_by_close():
                self.violation("cancel", f"409 canceled on the first cancel of a command", c.id)
            c.learn_terminal(t_recv)
        else:
            c.cancel["outcome"] = f"status {resp.status}"
            self.violation("contract", f"cancel: {resp.status} {resp.text()}", c.id)

    def canceled_by_close(self):
        return {c.id for c in self.cmds.values() if c.session in self.closed_sessions}

    async def close_session(self, dev):
        t_sent = now()
        self.closed_sessions[dev.session] = {"t_sent": t_sent, "outcome": "maybe"}
        resp, _ = await self.call("POST", f"/api/v1/customer/sessions/{dev.session}/close", bearer=self.op_jwt)
        entry = self.closed_sessions[dev.session]
        entry["t_recv"] = now()
        if resp is not None:
            entry["outcome"] = "ok" if resp.status == 200 else f"status {resp.status}"
            if resp.status != 200 or (resp.json or {}).get("state") != "closed":
                self.violation("contract", f"close session {dev.session}: {resp.status} {resp.text()}")
        self.stats.inc("sessions_closed")

    async def run_operator(self, duration):
        """Proposals at a fixed rate; cancels; a few sessions closed midway."""
        rng = self.rng
        start = now()
        period = 1.0 / self.args.rate
        sem = asyncio.Semaphore(24)
        closed_done = False
        next_at = start

        async def one(dev):
            async with sem:
                await self.propose(dev)

        while now() - start < duration:
            open_devs = [d for d in self.devices if d.session not in self.closed_sessions]
            dev = rng.choice(open_devs)
            self.spawn(one(dev), "propose")
            if rng.random() < self.args.cancel_rate:
                live = [c for c in self.cmds.values() if c.cancel is None and c.terminal_known_at is None]
                if live:
                    self.spawn(self.cancel(rng.choice(live)), "cancel")
            if not closed_done and now() - start > duration * 0.45:
                closed_done = True
                for d in rng.sample(open_devs, max(1, len(open_devs) // 50)):
                    self.spawn(self.close_session(d), "close")
            next_at += period
            await asyncio.sleep(max(0.0, next_at - now()))
        while sem._value < 24:  # let the proposals in flight finish
            await asyncio.sleep(0.05)

    # ---------------------------------------------------------------- settling

    async def unfinished_count(self):
        resp, _ = await self.call("GET", f"/api/v1/queue/metrics?org_id={self.org}", bearer=self.op_jwt)
        if resp is not None and resp.status == 200 and isinstance(resp.json, dict):
            items = resp.json.get("items") or []
            bad = [i for i in items if i.get("state") not in UNFINISHED]
            if bad:
                self.violation("contract", f"queue metrics list finished states: {bad}")
            return sum(int(i.get("count", 0)) for i in items if i.get("org_id") == self.org)
        if resp is not None:
            self.violation("contract", f"GET /api/v1/queue/metrics: {resp.status} {resp.text()}")
        # Fallback: every session's unfinished commands.
        total = 0
        for sid in list(self.sessions):
            r, _ = await self.call("GET", f"/api/v1/customer/sessions/{sid}/commands?state=pending_approval,queued,claimed&limit=200",
                                   bearer=self.op_jwt)
            if r is not None and r.status == 200:
                total += len((r.json or {}).get("items") or [])
        return total

    async def settle(self, timeout):
        start = now()
        zero = 0
        last = None
        while now() - start < timeout:
            n = await self.unfinished_count()
            if n != last:
                log(f"unfinished: {n}")
                last = n
            zero = zero + 1 if n == 0 else 0
            if zero >= 2:
                self.settled_at = now()
                log(f"settled after {self.settled_at - start:.1f} s")
                return True
            await asyncio.sleep(1.0)
        self.violation("not_settled", f"{last} commands still unfinished {timeout} s after the load")
        return False

    async def fetch_api_states(self):
        sem = asyncio.Semaphore(16)

        async def one(c):
            async with sem:
                r, _ = await self.call("GET", f"/api/v1/customer/commands/{c.id}", bearer=self.op_jwt)
                if r is not None and r.status == 200:
                    c.api_state = (r.json or {}).get("state")
                else:
                    c.api_state = f"status {r.status if r else None}"
        accepted = [self.cmds[p["id"]] for p in self.proposals if p["outcome"] == "accepted"]
        await asyncio.gather(*(one(c) for c in accepted))

    # ---------------------------------------------------------------- runs

    async def run_soak(self):
        a = self.args
        self.spawn(self.control_reader(), "control reader")
        await self.setup(a.devices, a.ws_fraction)
        for d in self.devices:
            d.start()
        print("LOAD", flush=True)
        log(f"load for {a.duration} s at {a.rate} proposals/s")
        load_start = now()
        faults = []
        for action in a.faults:
            at = load_start + a.duration * self.rng.uniform(0.3, 0.55)
            faults.append(self.spawn(self.fault_at(at, action), "fault"))
        await self.run_operator(a.duration)
        for f in faults:
            await f
        self.load_over = True
        log(f"load over: {self.stats.get('accepted', 0)} commands accepted; settling")
        # Decisions still pending (sleeping) finish here; then wait for the hub to finish all.
        await asyncio.sleep(1.6)
        await self.settle(a.settle_timeout)
        await self.fetch_api_states()
        await asyncio.sleep(1.0)
        self.stop.set()
        for d in self.devices:
            await d.shutdown()

    async def fault_at(self, at, action):
        await asyncio.sleep(max(0.0, at - now()))
        await self.control(action)

    def report(self):
        deliveries = sum(len(c.leases) for c in self.cmds.values())
        redeliveries = sum(1 for c in self.cmds.values() for l in c.leases if l.attempt and l.attempt > 1)
        self.stats["deliveries"] = deliveries
        self.stats["redeliveries"] = redeliveries
        self.stats["results_accepted"] = sum(len(c.results_ok) for c in self.cmds.values())
        self.stats["commands_with_result"] = sum(1 for c in self.cmds.values() if c.results_ok)
        return {"org_id": self.org, "operator": self.operator, "approver": self.approver, "seed": self.args.seed,
                "proposals": self.proposals, "commands": {cid: c.to_json() for cid, c in self.cmds.items()},
                "sessions": {sid: d.id for sid, d in self.sessions.items()}, "closed_sessions": self.closed_sessions,
                "fault_windows": self.fault_windows, "settled_at": self.settled_at, "violations": self.violations,
                "info": self.info[:500], "info_count": len(self.info), "stats": dict(sorted(self.stats.items()))}


def load_validator(directory):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    resources = []
    for name in os.listdir(directory):
        if name.endswith(".schema.json"):
            with open(os.path.join(directory, name)) as f:
                doc = json.load(f)
            resources.append((doc["$id"], Resource.from_contents(doc)))
    with open(os.path.join(directory, "server-message.schema.json")) as f:
        root = json.load(f)
    return Draft202012Validator(root, registry=Registry().with_resources(resources))


# --------------------------------------------------------------------------------------------
# A simulated device.

class Device:
    def __init__(self, driver, index, device_id, secret, mode):
        self.d = driver
        self.index = index
        self.id = device_id
        self.secret = secret
        self.mode = mode
        self.token = None
        self.session = None
        self.node = index % len(driver.nodes)
        self.auth_lock = asyncio.Lock()
        self.held = {}                 # command id → Lease being worked on
        self.inflight = 0              # deliveries being worked on (at most 3)
        self.tasks = []
        # WebSocket state
        self.ws = None
        self.connected = asyncio.Event()
        self.wake = asyncio.Event()
        self.pending = {}
        self.msg_seq = 0
        self.canceled = set()          # command ids the hub told us to drop

    # ------------------------------------------------------------ auth

    async def authenticate(self, stale=None):
        async with self.auth_lock:
            if stale is not None and self.token != stale:
                return
            while True:
                resp, _ = await self.d.call("POST", "/api/v1/device/auth", body={"device_id": self.id, "device_secret": self.secret},
                                            deadline=60)
                if resp is not None and resp.status == 200:
                    self.token = resp.json["token"]
                    if stale is not None:
                        self.d.stats.inc("reauths")
                    return
                if resp is not None:
                    raise RuntimeError(f"device auth: {resp.status} {resp.text()}")

    # ------------------------------------------------------------ transport

    async def rest(self, method, path, body, deadline=30.0, timeout=15.0):
        """(resp or None, maybe). 401 → authenticate again and retry; 5xx/connection errors → retry."""
        end = now() + deadline
        maybe = False
        backoff = 0.05
        while True:
            token = self.token
            resp, m = await self.d.call(method, path, body=body, bearer=token, node=self.node, retry=False, timeout=timeout)
            maybe = maybe or m
            if resp is not None and resp.status == 401:
                self.d.stats.inc("device_401")
                await self.authenticate(stale=token)
                if now() > end:
                    return None, maybe
                continue
            if resp is not None and resp.status < 500 and resp.status != 429:
                return resp, maybe
            if now() + backoff > end:
                return None, True
            await asyncio.sleep(backoff * (0.5 + self.d.rng.random()))
            backoff = min(1.0, backoff * 2)
            self.node = self.d.rng.randrange(len(self.d.nodes))

    async def ws_request(self, msg, deadline=30.0):
        """(reply or None, maybe): sent again after reconnects and `unavailable` errors."""
        end = now() + deadline
        maybe = False
        backoff = 0.05
        while not self.d.stop.is_set():
            remaining = end - now()
            if remaining <= 0:
                return None, True
            try:
                await asyncio.wait_for(self.connected.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                return None, True
            ws = self.ws
            if ws is None:
                await asyncio.sleep(0.01)
                continue
            self.msg_seq += 1
            mid = f"m{self.msg_seq}"
            fut = asyncio.get_running_loop().create_future()
            self.pending[mid] = fut
            try:
                await ws.send(json.dumps(dict(msg, id=mid)))
                reply = await asyncio.wait_for(fut, timeout=min(15.0, max(0.1, end - now())))
            except (ConnectionClosed, NetError, OSError, asyncio.TimeoutError):
                maybe = True
                self.pending.pop(mid, None)
                self.d.stats.inc("ws_lost_replies")
                await asyncio.sleep(backoff * (0.5 + self.d.rng.random()))
                backoff = min(1.0, backoff * 2)
                continue
            if reply.get("type") == "error" and reply.get("code") in ("unavailable", "queue_rebuilding", "internal", "internal_error"):
                self.d.stats.inc(f"ws_error_{reply.get('code')}")
                maybe = maybe or reply.get("code") != "queue_rebuilding"
                if now() + backoff > end:
                    return None, True
                await asyncio.sleep(backoff * (0.5 + self.d.rng.random()))
                backoff = min(1.0, backoff * 2)
                continue
            return reply, maybe
        return None, True

    async def op(self, name, cid, fields, deadline=30.0):
        """A lease operation on either transport, as (status, body, maybe) in HTTP terms."""
        if self.mode == "rest":
            resp, maybe = await self.rest("POST", f"/api/v1/device/commands/{cid}/{name}", fields, deadline=deadline)
            if resp is None:
                return None, None, maybe
            return resp.status, resp.json or {}, maybe
        reply, maybe = await self.ws_request(dict(fields, type=name, command_id=cid), deadline=deadline)
        if reply is None:
            return None, None, maybe
        if reply.get("type") == "ack":
            if reply.get("command_id") != cid:
                self.d.violation("contract", f"ws ack for {name} names command {reply.get('command_id')}", cid)
            return 200, reply, maybe
        code = reply.get("code")
        status = {"lease_conflict": 409, "not_found": 404, "invalid_argument": 400}.get(code, 400)
        return status, reply, maybe

    # ------------------------------------------------------------ lifecycle

    def start(self):
        if self.mode == "rest":
            self.tasks.append(self.d.spawn(self.rest_loop(), f"rest {self.index}"))
        else:
            self.tasks.append(self.d.spawn(self.ws_connection(), f"ws {self.index}"))
            self.tasks.append(self.d.spawn(self.ws_claim_loop(), f"ws claim {self.index}"))

    async def shutdown(self):
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), timeout=2)
            except Exception:
                pass

    async def rest_loop(self):
        rng = self.d.rng
        while not self.d.stop.is_set():
            free = 3 - self.inflight
            if free <= 0:
                await asyncio.sleep(0.05)
                continue
            wait = rng.choice(self.d.args.waits)
            t_sent = now()
            resp, _ = await self.rest("POST", "/api/v1/device/commands/claim", {"max": rng.randint(1, free), "wait_seconds": wait},
                                      timeout=wait + 10.0)
            t_recv = now()
            self.d.stats.inc("claims")
            items = []
            if resp is not None and resp.status == 200:
                items = (resp.json or {}).get("commands")
                if not isinstance(items, list):
                    self.d.violation("contract", f"claim answer without commands: {resp.text()}")
                    items = []
                if wait > 0 and not items and t_recv - t_sent < wait - 0.5 and not self.d.in_fault_window(t_sent):
                    self.d.note("short_poll", f"empty long poll after {t_recv - t_sent:.2f} s of {wait}")
            elif resp is not None:
                self.d.violation("contract", f"claim: {resp.status} {resp.text()}")
                await asyncio.sleep(0.5)
            for item in items:
                self.delivered(item, t_sent, t_recv, "rest", resp.node)
            if not items and wait == 0:
                await asyncio.sleep(0.3 + rng.random() * 0.4)

    async def ws_connection(self):
        backoff = 0.05
        while not self.d.stop.is_set():
            host, port = self.d.nodes[self.node]
            try:
                async with connect(f"ws://{host}:{port}/ws/device", additional_headers=[("Authorization", f"Bearer {self.token}")],
                                   open_timeout=5, close_timeout=1, ping_interval=None, max_size=2 ** 20) as ws:
                    self.ws = ws
                    self.connected.set()
                    self.wake.set()       # claim what waited while we were away
                    backoff = 0.05
                    self.d.stats.inc("ws_connects")
                    async for raw in ws:
                        self.on_message(raw)
                    code = ws.close_code
            except InvalidStatus as e:
                code = None
                status = e.response.status_code
                if status == 401:
                    self.d.stats.inc("device_401")
                    await self.authenticate(stale=self.token)
                    await asyncio.sleep(0.05)
                    continue
                self.d.stats.inc(f"ws_handshake_{status}")
            except (OSError, InvalidHandshake, ConnectionClosed, asyncio.TimeoutError, EOFError) as e:
                code = getattr(getattr(e, "rcvd", None), "code", None)
                self.d.stats.inc("ws_connect_errors")
            finally:
                self.connected.clear()
                self.ws = None
                for fut in self.pending.values():
                    if not fut.done():
                        fut.set_exception(NetError("socket closed"))
                self.pending.clear()
            if self.d.stop.is_set():
                return
            self.d.stats.inc(f"ws_close_{code}")
            if code == 4503:
                await self.authenticate(stale=self.token)
            if code == 4509:
                self.d.violation("ws_replaced", f"device {self.id}: socket replaced though it keeps one")
            await asyncio.sleep(backoff * (0.5 + self.d.rng.random()))
            backoff = min(1.0, backoff * 2)
            self.node = self.d.rng.randrange(len(self.d.nodes))

    def on_message(self, raw):
        try:
            msg = json.loads(raw)
        except ValueError:
            self.d.violation("contract", f"ws: not JSON: {raw[:200]!r}")
            return
        if self.d.validator is not None:
            errors = sorted(self.d.validator.iter_errors(msg), key=lambda e: list(e.path))
            if errors:
                self.d.violation("schema", f"{msg.get('type')}: {errors[0].message} in {json.dumps(msg)[:300]}")
        t = msg.get("type")
        if t in ("commands", "ack", "error") and msg.get("id") in self.pending:
            fut = self.pending.pop(msg["id"])
            if not fut.done():
                fut.set_result(msg)
        elif t == "error" and "id" not in msg:
            self.d.violation("contract", f"ws: error without id (an unreadable message of ours?): {json.dumps(msg)[:300]}")
        elif t in ("commands", "ack", "error"):
            self.d.stats.inc("ws_late_replies")   # its request timed out here and was sent again
            if t == "commands" and msg.get("commands"):
                self.d.note("late_claim_reply", f"a claim answer arrived after its timeout: {json.dumps(msg)[:300]}")
        elif t == "command.available":
            self.d.stats.inc("push_available")
            self.wake.set()
        elif t == "command.cancel":
            self.d.stats.inc("push_cancel")
            cid = msg.get("command_id")
            self.canceled.add(cid)
            if cid in self.d.cmds:
                self.d.cmds[cid].cancel_pushes += 1
        else:
            self.d.violation("contract", f"ws: unexpected message {json.dumps(msg)[:300]}")

    async def ws_claim_loop(self):
        rng = self.d.rng
        while not self.d.stop.is_set():
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.d.args.ws_fallback_poll)
                pushed = True
            except asyncio.TimeoutError:
                pushed = False
            self.wake.clear()
            while not self.d.stop.is_set():
                free = 3 - self.inflight
                if free <= 0:
                    await asyncio.sleep(0.05)
                    continue
                t_sent = now()
                reply, _ = await self.ws_request({"type": "claim", "max": rng.randint(1, free)}, deadline=10)
                t_recv = now()
                self.d.stats.inc("claims")
                if reply is None:
                    break
                if reply.get("type") != "commands" or not isinstance(reply.get("commands"), list):
                    self.d.violation("contract", f"ws claim answered {json.dumps(reply)[:300]}")
                    break
                items = reply["commands"]
                if items and not pushed:
                    self.d.stats.inc("fallback_claims_with_work")
                for item in items:
                    self.delivered(item, t_sent, t_recv, "ws", self.node)
                if not items:
                    break

    # ------------------------------------------------------------ deliveries

    def delivered(self, item, t_sent, t_recv, via, node):
        d = self.d
        for field in ("id", "kind", "args", "priority", "lease_token", "lease_expires_at", "attempt"):
            if field not in item:
                d.violation("contract", f"claimed item without {field}: {json.dumps(item)[:300]}")
                return
        cid = item["id"]
        c = d.cmd(cid)
        expires = parse_time(item["lease_expires_at"])
        lease = Lease(cid, item["lease_token"], item["attempt"], expires, t_sent, t_recv, self.id, via, node)
        lease.item = item
        if c.nonce is None:
            # Delivered before the operator read the 201: checked when it does (Driver.propose).
            d.note("early_delivery", "delivered before the driver read its 201", cid)
        else:
            d.check_delivery(c, lease)
        if not isinstance(item["attempt"], int) or item["attempt"] < 1:
            d.violation("contract", f"attempt {item['attempt']!r}", cid)
        if c.terminal_known_at is not None and c.terminal_known_at < t_sent:
            d.violation("terminal_delivery",
                        f"delivered (claim sent {t_sent - c.terminal_known_at:.3f} s after) a command known terminal "
                        f"(cancel {c.cancel}, results {c.results_ok}, decision {c.decision})", cid)
        if d.settled_at is not None and t_sent > d.settled_at:
            d.violation("delivery_after_settle", f"delivered {t_sent - d.settled_at:.2f} s after the hub reported nothing unfinished", cid)
        for old in c.leases:
            if old.attempt == item["attempt"] and old.token != lease.token:
                if d.flushed_after(old.t_sent):
                    d.note("same_attempt_after_flush", f"attempt {old.attempt} delivered twice around a flush", cid)
                else:
                    d.violation("same_attempt", f"attempt {item['attempt']} delivered twice (leases {old.token}, {lease.token})", cid)
            if old.token == lease.token:
                d.violation("lease_token_reused", f"lease token {old.token} handed out twice", cid)
            live = old.end_sent is None or old.end_sent > t_recv
            if live and old.expires > t_recv + TOL:
                if d.flushed_after(old.t_sent):
                    d.note("overlap_after_flush", f"lease {old.token} (attempt {old.attempt}) live until "
                           f"{old.expires - t_recv:.2f} s after attempt {item['attempt']} was delivered", cid)
                else:
                    d.violation("lease_overlap",
                                f"attempt {item['attempt']} delivered while lease {old.token} (attempt {old.attempt}, "
                                f"claimed at {old.t_recv:.3f}) was live for {old.expires - t_recv:.2f} s more", cid)
        c.leases.append(lease)
        if item["attempt"] > 1:
            d.stats.inc("redelivered")
        d.stats.inc("delivered")
        self.held[cid] = lease
        self.inflight += 1
        t = self.d.spawn(self.work(c, lease), "work")
        self.tasks.append(t)

    async def lease_op(self, c, lease, name, fields, deadline=30.0):
        t_sent = now()
        if name in ("release", "result") and lease.end_sent is None:
            lease.end_sent = t_sent
        status, body, maybe = await self.op(name, c.id, dict(fields, lease_token=lease.token), deadline=deadline)
        t_recv = now()
        if name in ("extend", "progress") and (maybe or status is None):
            lease.expiry_uncertain = True
        if status == 200:
            if body.get("lease_expires_at") and name in ("extend", "progress"):
                lease.expires = parse_time(body["lease_expires_at"])
            if name in ("extend", "progress") and body.get("state") != "claimed":
                d = self.d
                d.violation("contract", f"{name} answered 200 with state {body.get('state')}", c.id)
        elif status == 409:
            if body.get("code") not in ("lease_conflict", None) or ("state" not in body and self.mode == "rest"):
                self.d.violation("contract", f"{name} 409 body {json.dumps(body)[:300]}", c.id)
            if body.get("state") in TERMINAL:
                c.learn_terminal(t_recv)
        elif status == 404:
            self.d.violation("own_command_404", f"{name} of the device's own command: {json.dumps(body)[:300]}", c.id)
        elif status is not None:
            self.d.violation("contract", f"{name}: {status} {json.dumps(body)[:300]}", c.id)
        return status, body, maybe, t_sent, t_recv

    async def work(self, c, lease):
        d = self.d
        rng = d.rng
        try:
            await self._work(c, lease, rng)
        finally:
            self.inflight -= 1
            if self.held.get(c.id) is lease:
                del self.held[c.id]

    async def _work(self, c, lease, rng):
        d = self.d
        # The visibility timeout, whole seconds (a delivery may arrive before its 201 was read).
        vt = c.vt or max(1, int(lease.expires - now() + 0.999))
        r = rng.random()
        if c.id in self.canceled:
            lease.outcome = "dropped (cancel push)"
            return
        if r < d.args.abandon_rate:
            lease.outcome = "abandoned"
            d.stats.inc("abandoned")
            return
        if r < d.args.abandon_rate + d.args.lapse_rate:
            # Sleep past the visibility timeout, then answer anyway: the hub must refuse.
            lease.outcome = "lapsed"
            d.stats.inc("lapsed")
            await asyncio.sleep(max(0.0, lease.expires - now()) + rng.uniform(TOL + 0.05, 1.3))
            await self.result(c, lease, late=True)
            return
        if r < d.args.abandon_rate + d.args.lapse_rate + d.args.release_rate:
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            delay = rng.choice([0, 0, 1])
            status, body, maybe, _, _ = await self.lease_op(c, lease, "release", {"delay_seconds": delay})
            lease.outcome = f"released ({status})"
            d.stats.inc("releases")
            if status == 200:
                if body.get("state") not in ("queued", "dead_lettered"):
                    d.violation("contract", f"release answered state {body.get('state')}", c.id)
                if body.get("state") == "dead_lettered":
                    c.learn_terminal(now())
                    if c.max_attempts and lease.attempt < c.max_attempts:
                        d.violation("release", f"release at attempt {lease.attempt} of {c.max_attempts} dead-lettered", c.id)
                elif c.max_attempts and lease.attempt >= c.max_attempts:
                    d.violation("release", f"release at the last attempt ({lease.attempt}) answered {body.get('state')}", c.id)
            return
        # Normal work: progress, extend, a foreign-lease probe, the result (sometimes twice).
        steps = rng.randint(0, 3)
        for _ in range(steps):
            if c.id in self.canceled:
                lease.outcome = "dropped (cancel push)"
                return
            await asyncio.sleep(rng.uniform(0.05, min(0.6, vt * 0.3)))
            if rng.random() < 0.5:
                fields = {"percent": rng.randint(1, 99), "status": {"step": rng.randint(1, 9)}}
                if rng.random() < 0.3:
                    fields["extend_seconds"] = vt
                status, _, _, _, _ = await self.lease_op(c, lease, "progress", fields)
                d.stats.inc("progress")
            else:
                status, _, _, _, _ = await self.lease_op(c, lease, "extend", {"seconds": vt})
                d.stats.inc("extends")
            if status == 409:
                lease.outcome = "lost (409 on progress/extend)"
                return
            if status is None:
                break
        if c.id in self.canceled:
            lease.outcome = "dropped (cancel push)"
            return
        if rng.random() < 0.05:
            bogus = str(uuid.uuid4())
            status, body, _ = await self.op("result", c.id, {"lease_token": bogus, "status": "succeeded", "exit_code": 0})
            d.stats.inc("foreign_lease_probes")
            if status != 409:
                d.violation("foreign_lease", f"result with a random lease token: {status} {json.dumps(body)[:200]}", c.id)
        await asyncio.sleep(rng.uniform(0.02, min(0.5, vt * 0.2)))
        await self.result(c, lease, twice=rng.random() < 0.1)

    async def result(self, c, lease, late=False, twice=False):
        d = self.d
        rng = d.rng
        if lease.outcome is None:
            lease.outcome = "result"
        st = "succeeded" if rng.random() < 0.8 else "failed"
        exit_code = 0 if st == "succeeded" else rng.randint(1, 3)
        fields = {"status": st, "exit_code": exit_code, "output": f"done {c.nonce or c.id}"}
        n = 2 if twice else 1
        accepted_before = False
        for i in range(n):
            status, body, maybe, t_sent, t_recv = await self.lease_op(c, lease, "result", fields)
            d.stats.inc("results_sent")
            entry = {"lease": lease.token, "status": st, "exit_code": exit_code, "t_sent": t_sent, "t_recv": t_recv,
                     "attempt": lease.attempt, "late": late, "maybe": maybe}
            if status == 200:
                c.results_ok.append(entry)
                c.learn_terminal(t_recv)
                d.stats.inc(f"results_{st}")
                if body.get("state") != st:
                    d.violation("contract", f"result {st} answered state {body.get('state')}", c.id)
                if (late and not lease.expiry_uncertain and t_sent > lease.expires + TOL
                        and not d.flushed_after(lease.t_sent)):
                    d.violation("lapsed_lease_accepted",
                                f"result sent {t_sent - lease.expires:.2f} s after the lease (attempt {lease.attempt}) lapsed was accepted", c.id)
                accepted_before = True
            elif status == 409:
                entry.update(code=body.get("code"), state=body.get("state"))
                c.results_refused.append(entry)
                d.check_old_lease_result(c, lease, status, body, t_sent, t_recv)
                d.stats.inc("results_409")
                if accepted_before or (maybe and body.get("state") == st):
                    d.violation("result_replay_refused",
                                f"the same result with the same lease again was refused: {json.dumps(body)[:200]}", c.id)
                # (The TTL ends a command whatever its lease: a result after expires_at is refused.)
                if (not late and not maybe and not lease.expiry_uncertain and t_recv < lease.expires - TOL
                        and c.expires_at is not None and t_recv < c.expires_at - TOL and c.cancel is None and c.id not in self.canceled and body.get("state") == "claimed"
                        and not d.in_fault_window(t_sent) and not d.flushed_after(lease.t_sent)):
                    d.violation("live_lease_refused",
                                f"result refused with state claimed {lease.expires - t_recv:.2f} s before the lease lapsed", c.id)
            elif status is None:
                c.results_maybe.append(entry)
                d.stats.inc("results_unknown")
            if status != 200:
                break


# --------------------------------------------------------------------------------------------
# Embedded store: kill -9 and restart with queued, claimed, finished and pending commands.

async def run_embedded(d):
    a = d.args
    d.auto_decide = False
    d.spawn(d.control_reader(), "control reader")
    await d.setup(a.devices, a.ws_fraction)
    per_device = 6
    held = {}          # command id → lease held across the restart
    finished = set()
    pending = []
    queued_before = set()
    # Phase 1 over REST for all devices: precise control of what is held.
    for dev in d.devices:
        dev.mode = "rest"
    for dev in d.devices:
        for i in range(per_device):
            kind = MANUAL_KINDS[0] if i >= per_device - 2 else AUTO_KINDS[i % 2]
            c = await d.propose(dev, kind=kind, ttl=600, vt=a.vts[0], max_attempts=3, key_mode="once")
            if c is None:
                raise RuntimeError("proposal not accepted")
            if kind in MANUAL_KINDS:
                pending.append(c)
    # Approve half of the commands that need it now; the other half after the restart.
    for c in pending[::2]:
        await d.must(200, "POST", f"/api/v1/customer/commands/{c.id}/approve", bearer=d.ap_jwt, body={})
        c.decision = {"op": "approve", "outcome": "ok"}
    still_pending = pending[1::2]
    for dev in d.devices:
        # A queue still being built answers claims empty for a moment: ask a few times.
        for _ in range(20):
            t_sent = now()
            resp, _ = await dev.rest("POST", "/api/v1/device/commands/claim", {"max": 2, "wait_seconds": 1})
            t_recv = now()
            items = (resp.json or {}).get("commands") if resp is not None and resp.status == 200 else None
            if items:
                break
        if not items or len(items) != 2:
            d.violation("embedded", f"device {dev.id}: phase 1 claim answered {resp.status if resp else None} {resp.text() if resp else ''}")
            continue
        leases = []
        for item in items:
            c = d.cmd(item["id"])
            lease = Lease(c.id, item["lease_token"], item["attempt"], parse_time(item["lease_expires_at"]), t_sent, t_recv, dev.id, "rest", 0)
            c.leases.append(lease)
            d.stats.inc("delivered")
            leases.append((c, lease))
        # The first one finishes before the kill, the second stays held (its lease lives on).
        c, lease = leases[0]
        status, body, _, _, t_recv = await dev.lease_op(c, lease, "result", {"status": "succeeded", "exit_code": 0, "output": "before"})
        if status == 200:
            c.results_ok.append({"lease": lease.token, "status": "succeeded", "exit_code": 0, "t_sent": 0, "t_recv": t_recv,
                                 "attempt": lease.attempt, "late": False, "maybe": False})
            c.learn_terminal(t_recv)
            finished.add(c.id)
        else:
            d.violation("embedded", f"phase 1 result: {status} {body}", c.id)
        c, lease = leases[1]
        lease.outcome = "held across the restart"
        held[c.id] = lease
    for c in d.cmds.values():
        if c.id not in finished and c.id not in held and c not in still_pending:
            queued_before.add(c.id)
    log(f"before the kill: {len(finished)} finished, {len(held)} held, {len(queued_before)} queued, {len(still_pending)} pending")
    kill_at = now()
    await d.control("kill-restart 0")
    restarted_at = now()
    log(f"restarted after {restarted_at - kill_at:.1f} s")
    # One held lease is answered with its old token right away: either outcome is allowed (the
    # lease may have been restored with its token or not), it is only reported.
    probe_id = next(iter(held), None)
    if probe_id:
        dev = next(x for x in d.devices if x.id == d.cmds[probe_id].device)
        lease = held[probe_id]
        status, body, _, t_sent, t_recv = await dev.lease_op(d.cmds[probe_id], lease, "result",
                                                             {"status": "succeeded", "exit_code": 0, "output": "old lease"})
        d.note("old_lease_after_restart", f"result with the pre-restart lease: {status} {json.dumps(body)[:200]}", probe_id)
        d.check_old_lease_result(d.cmds[probe_id], lease, status, body or {}, t_sent, t_recv)
        if status == 200:
            d.cmds[probe_id].results_ok.append({"lease": lease.token, "status": "succeeded", "exit_code": 0, "t_sent": 0,
                                                "t_recv": t_recv, "attempt": lease.attempt, "late": False, "maybe": False})
            d.cmds[probe_id].learn_terminal(t_recv)
            held.pop(probe_id)
            finished.add(probe_id)
        else:
            lease.end_sent = None  # refused: the lease is not ended by it
    for c in still_pending:
        await d.must(200, "POST", f"/api/v1/customer/commands/{c.id}/approve", bearer=d.ap_jwt, body={})
        c.decision = {"op": "approve", "outcome": "ok"}
    # Phase 2: every device claims and finishes whatever comes; half of them over /ws/device.
    for dev in d.devices:
        dev.mode = "ws" if dev.index % 2 == 0 else "rest"
        dev.token = dev.token  # a 401 (tokens lost with the process) makes them authenticate again
    d.args.abandon_rate = d.args.lapse_rate = d.args.release_rate = 0.0
    for dev in d.devices:
        dev.start()
    total = len(d.cmds)
    deadline = now() + a.settle_timeout
    while now() < deadline:
        done = sum(1 for c in d.cmds.values() if c.results_ok)
        if done == total:
            break
        await asyncio.sleep(0.5)
    d.settled_at = now()
    for cid, lease in held.items():
        c = d.cmds[cid]
        later = [l for l in c.leases if l is not lease]
        if not later:
            d.violation("embedded_lost", f"a command held across the restart was never delivered again (lease lapsed at "
                        f"{lease.expires - restarted_at:.1f} s after the restart)", cid)
            continue
        first = later[0]
        if first.t_recv < lease.expires - TOL:
            d.violation("embedded_early", f"delivered again {lease.expires - first.t_recv:.2f} s before the held lease lapsed", cid)
        if first.attempt != lease.attempt + 1:
            d.violation("embedded_attempts", f"redelivery after the restart is attempt {first.attempt}, expected {lease.attempt + 1}", cid)
    for cid in queued_before | {c.id for c in still_pending}:
        if not d.cmds[cid].results_ok:
            d.violation("embedded_lost", "a command queued before the kill was not delivered and finished after the restart", cid)
    for cid in finished:
        if len(d.cmds[cid].leases) > 1:
            d.violation("terminal_delivery", "a command finished before the kill was delivered again", cid)
    d.stats["embedded_held"] = len(held)
    d.stats["embedded_finished_before"] = len(finished)
    d.stats["embedded_queued_before"] = len(queued_before)
    d.stats["embedded_pending_before"] = len(still_pending)
    await d.fetch_api_states()
    d.stop.set()
    for dev in d.devices:
        await dev.shutdown()


# --------------------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", required=True)
    p.add_argument("--admin-token", required=True)
    p.add_argument("--jwt-secret", required=True)
    p.add_argument("--supabase-url", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", default="soak", choices=["soak", "embedded"])
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--ws-fraction", type=float, default=0.5)
    p.add_argument("--duration", type=float, default=25.0)
    p.add_argument("--rate", type=float, default=30.0, help="proposals per second")
    p.add_argument("--settle-timeout", type=float, default=60.0)
    p.add_argument("--ttls", default="8,12,20")
    p.add_argument("--vts", default="2,3,4")
    p.add_argument("--waits", default="0,2,3,3")
    p.add_argument("--cancel-rate", type=float, default=0.06)
    p.add_argument("--abandon-rate", type=float, default=0.06)
    p.add_argument("--lapse-rate", type=float, default=0.08)
    p.add_argument("--release-rate", type=float, default=0.08)
    p.add_argument("--ws-fallback-poll", type=float, default=3.0)
    p.add_argument("--faults", default="", help="comma list of control actions during the load (kill-restart 1, flushall)")
    p.add_argument("--schemas", default=None, help="protocol/ws: validate every device socket message")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    a.ttls = [int(x) for x in a.ttls.split(",")]
    a.vts = [int(x) for x in a.vts.split(",")]
    a.waits = [int(x) for x in a.waits.split(",")]
    a.faults = [f.strip() for f in a.faults.split(",") if f.strip()]
    return a


async def main():
    args = parse_args()
    log(f"seed {args.seed}, mode {args.mode}")
    d = Driver(args)
    try:
        if args.mode == "soak":
            await d.run_soak()
        else:
            await run_embedded(d)
    except Exception as e:
        import traceback
        d.violation("driver_error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    finally:
        d.stop.set()
        for t in list(d.tasks):
            t.cancel()
        report = d.report()
        with open(args.out, "w") as f:
            json.dump(report, f)
        log("stats", json.dumps(report["stats"], sort_keys=True))
        log(f"{len(d.violations)} violations")


if __name__ == "__main__":
    asyncio.run(main())
