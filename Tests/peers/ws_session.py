"""A scripted WebSocket client session for the hub's socket tests, on python-websockets (an
independent implementation of RFC 6455).

    ws_session.py URL STEPS_JSON [--header NAME:VALUE]... [--schemas DIR]

STEPS_JSON is a list of steps:
  {"send": {...}}          send the object as a JSON text message
  {"recv": N}              wait for N messages (each recorded)
  {"ready": true}          print READY on stderr (a signal to the test that the session is set up)
  {"wait_close": SECONDS}  wait up to SECONDS for the server to close
  {"sleep": SECONDS}
  {"recv_for": SECONDS}    record every message that arrives within SECONDS
  {"send_logs": {"command_id": ID, "batches": N, "lines": L, "bytes": B, "interval": S}}
                           send N `logs` batches of L stdout lines of B bytes (seq from 1),
                           one every S seconds, without waiting for replies
  {"recv_until": {"type": T, "count": N, "timeout": SECONDS}}
                           record messages until N of type T arrived (error on timeout)
Prints one JSON object: {"handshake": status, "received": [...], "close_code": int|null,
"close_reason": str|null, "error": str|null, "schema_errors": [...]}.

With --schemas DIR (protocol/ws), every message received is validated against
server-message.schema.json (jsonschema, Draft 2020-12), and each failure is listed in
schema_errors: the server must send only what the protocol documents.
"""
import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def load_validator(directory):
    """A validator for server messages, with every schema of DIR in one registry (they refer to
    each other by relative $id)."""
    import os
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = []
    for name in os.listdir(directory):
        if name.endswith(".schema.json"):
            with open(os.path.join(directory, name)) as f:
                doc = json.load(f)
            resources.append((doc["$id"], Resource.from_contents(doc)))
    registry = Registry().with_resources(resources)
    with open(os.path.join(directory, "server-message.schema.json")) as f:
        root = json.load(f)
    return Draft202012Validator(root, registry=registry)


async def main():
    url, steps = sys.argv[1], json.loads(sys.argv[2])
    headers = []
    validator = None
    args = sys.argv[3:]
    while args:
        if args[0] == "--header":
            name, value = args[1].split(":", 1)
            headers.append((name, value.strip()))
            args = args[2:]
        elif args[0] == "--schemas":
            validator = load_validator(args[1])
            args = args[2:]
        else:
            raise SystemExit(f"unknown argument {args[0]}")
    out = {"handshake": None, "received": [], "close_code": None, "close_reason": None, "error": None, "schema_errors": []}
    try:
        async with connect(url, additional_headers=headers, open_timeout=10, ping_interval=None) as ws:
            out["handshake"] = 101
            try:
                for step in steps:
                    if "send" in step:
                        await ws.send(json.dumps(step["send"]))
                    elif "recv" in step:
                        for _ in range(step["recv"]):
                            msg = await asyncio.wait_for(ws.recv(), timeout=10)
                            out["received"].append(json.loads(msg))
                    elif "ready" in step:
                        print("READY", file=sys.stderr, flush=True)
                    elif "sleep" in step:
                        await asyncio.sleep(step["sleep"])
                    elif "send_logs" in step:
                        spec = step["send_logs"]
                        seq = 0
                        for _ in range(spec["batches"]):
                            lines = []
                            for _ in range(spec["lines"]):
                                seq += 1
                                lines.append({"stream": "stdout", "seq": seq, "data": ("%08d" % seq) + "x" * (spec["bytes"] - 8)})
                            await ws.send(json.dumps({"type": "logs", "command_id": spec["command_id"], "lines": lines}))
                            await asyncio.sleep(spec["interval"])
                    elif "recv_for" in step:
                        loop = asyncio.get_running_loop()
                        end = loop.time() + step["recv_for"]
                        while (left := end - loop.time()) > 0:
                            try:
                                msg = await asyncio.wait_for(ws.recv(), timeout=left)
                            except asyncio.TimeoutError:
                                break
                            out["received"].append(json.loads(msg))
                    elif "recv_until" in step:
                        want = step["recv_until"]
                        seen = 0
                        while seen < want["count"]:
                            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=want.get("timeout", 10)))
                            out["received"].append(msg)
                            if msg.get("type") == want["type"]:
                                seen += 1
                    elif "wait_close" in step:
                        try:
                            while True:
                                msg = await asyncio.wait_for(ws.recv(), timeout=step["wait_close"])
                                out["received"].append(json.loads(msg))
                        except ConnectionClosed:
                            pass
                        except asyncio.TimeoutError:
                            out["error"] = "timeout waiting for close"
            except ConnectionClosed:
                pass
            if ws.close_code is None and out["error"] is None:
                await ws.close()
            out["close_code"] = ws.close_code
            out["close_reason"] = ws.close_reason
    except InvalidStatus as e:
        out["handshake"] = e.response.status_code
    except Exception as e:  # noqa: BLE001 - reported to the test, which decides
        out["error"] = f"{type(e).__name__}: {e}"
    if validator is not None:
        for message in out["received"]:
            for error in validator.iter_errors(message):
                out["schema_errors"].append(f"{json.dumps(message)}: {error.message}")
    print(json.dumps(out), flush=True)


asyncio.run(main())
