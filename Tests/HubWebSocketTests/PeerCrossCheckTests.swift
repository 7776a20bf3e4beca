// Cross-check against independent implementations, run as a python3 subprocess:
//   - frames produced by wsproto's client (masked, with and without permessage-deflate,
//     fragmented, control frames) parse with our server-role reader;
//   - frames our server-role writer produces parse with wsproto's client;
//   - websockets' accept_key equals our Sec-WebSocket-Accept.
//
// The interpreter: $HUB_WS_PYTHON, else $DEVICEHUB_TEST_PYTHON (what scripts/test exports for
// its virtualenv of test peers), else the nearest `.venv/bin/python3` above this file, else
// `python3` on PATH. It needs `pip install wsproto websockets`. When none of those can import
// both, the tests are skipped with a message saying so (set HUB_WS_REQUIRE_PEERS=1 to make that
// a failure instead, as CI should once it installs the peers).

import Foundation
import XCTest
@testable import HubWebSocket

private let peerScript = #"""
import json, sys
from wsproto.frame_protocol import FrameProtocol, Opcode
from wsproto.extensions import PerMessageDeflate

def extensions(d):
    if d is None:
        return []
    parts = ["permessage-deflate"]
    if d["sNCT"]: parts.append("server_no_context_takeover")
    if d["cNCT"]: parts.append("client_no_context_takeover")
    # wsproto refuses 8 (zlib cannot deflate raw with 8 bits); set it underneath the check so
    # its inflater really runs with a 256-byte window against our 8-bit server direction.
    parts.append("server_max_window_bits=%d" % max(9, d["sBits"]))
    parts.append("client_max_window_bits=%d" % max(9, d["cBits"]))
    ext = PerMessageDeflate()
    ext.finalize("; ".join(parts))
    ext._server_max_window_bits = d["sBits"]
    ext._client_max_window_bits = d["cBits"]
    return [ext]

req = json.load(sys.stdin)
if req["mode"] == "accept":
    from websockets.utils import accept_key
    print(json.dumps([accept_key(k) for k in req["keys"]]))
elif req["mode"] == "encode":
    fp = FrameProtocol(client=True, extensions=extensions(req["deflate"]))
    out = bytearray()
    for m in req["messages"]:
        data = bytes.fromhex(m["hex"])
        if m["kind"] == "ping": out += fp.ping(data)
        elif m["kind"] == "pong": out += fp.pong(data)
        elif m["kind"] == "close": out += fp.close(m["code"], m["reason"])
        else:
            payload = data.decode("utf-8") if m["kind"] == "text" else data
            n = m.get("fragments", 1)
            step = max(1, -(-len(payload) // n))
            chunks = [payload[i:i + step] for i in range(0, len(payload), step)] or [payload]
            for i, c in enumerate(chunks):
                out += fp.send_data(c, fin=(i == len(chunks) - 1))
    print(json.dumps({"hex": out.hex()}))
else:
    # Our frames are unmasked server frames: parse them as a client would.
    fp = FrameProtocol(client=True, extensions=extensions(req["deflate"]))
    events, current, kind = [], None, None
    try:
        fp.receive_bytes(bytes.fromhex(req["hex"]))
        for f in fp.received_frames():
            if f.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
                if f.opcode != Opcode.CONTINUATION:
                    kind, current = ("text" if f.opcode == Opcode.TEXT else "binary"), bytearray()
                current += f.payload.encode("utf-8") if isinstance(f.payload, str) else f.payload
                if f.message_finished:
                    events.append({"kind": kind, "hex": bytes(current).hex()})
            elif f.opcode == Opcode.CLOSE:
                code, reason = f.payload
                events.append({"kind": "close", "code": int(code), "reason": reason})
            else:
                events.append({"kind": "ping" if f.opcode == Opcode.PING else "pong", "hex": bytes(f.payload).hex()})
    except Exception as e:
        events.append({"kind": "error", "reason": repr(e)})
    print(json.dumps(events))
"""#

struct PeerUnavailable: Error, CustomStringConvertible { let description: String }

final class PeerCrossCheckTests: XCTestCase {
    static var python: String?
    static var scriptPath: String?
    static var problem: String?

    override class func setUp() {
        super.setUp()
        var candidates: [String] = []
        for name in ["HUB_WS_PYTHON", "DEVICEHUB_TEST_PYTHON"] {
            if let env = ProcessInfo.processInfo.environment[name] { candidates.append(env) }
        }
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            candidates.append(dir.appendingPathComponent(".build-test-venv/bin/python").path)
            candidates.append(dir.appendingPathComponent(".venv/bin/python3").path)
            dir = dir.deletingLastPathComponent()
        }
        candidates.append("/usr/bin/env")
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("hubws-peer-\(getpid()).py")
        try? peerScript.write(to: script, atomically: true, encoding: .utf8)
        scriptPath = script.path
        for candidate in candidates where candidate == "/usr/bin/env" || FileManager.default.isExecutableFile(atPath: candidate) {
            let args = candidate == "/usr/bin/env" ? ["python3", "-c", "import wsproto, websockets"] : ["-c", "import wsproto, websockets"]
            if (try? runProcess(candidate, args, input: Data()))?.status == 0 {
                python = candidate
                return
            }
        }
        problem = "no python3 with wsproto and websockets (tried \(candidates)); pip install wsproto websockets"
    }

    static func runProcess(_ executable: String, _ arguments: [String], input: Data) throws -> (status: Int32, output: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        try process.run()
        // Write stdin and read stdout concurrently so neither pipe can fill up and deadlock.
        let writer = Thread {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    func peer(_ request: [String: Any]) throws -> Any {
        // Never a skip: a missing peer fails, so CI cannot pass without the cross-check.
        guard let python = Self.python, let script = Self.scriptPath else {
            throw PeerUnavailable(description: Self.problem ?? "no peer")
        }
        let args = python == "/usr/bin/env" ? ["python3", script] : [script]
        let result = try Self.runProcess(python, args, input: try JSONSerialization.data(withJSONObject: request))
        XCTAssertEqual(result.status, 0, "peer script failed")
        return try JSONSerialization.jsonObject(with: result.output)
    }

    /// Deflate parameter sets to try; nil = no extension.
    let deflateCases: [PerMessageDeflate.Parameters?] = [
        nil,
        PerMessageDeflate.Parameters(),
        PerMessageDeflate.Parameters(serverNoContextTakeover: true, clientNoContextTakeover: true),
        PerMessageDeflate.Parameters(clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 9),
        // Python's zlib, like any zlib, cannot deflate raw with 8 bits, so wsproto's client only
        // gets 9+ for its own direction; our 8-bit server direction is decoded by wsproto's
        // 8-bit inflater in the other test.
        PerMessageDeflate.Parameters(serverNoContextTakeover: true, serverMaxWindowBits: 8, clientMaxWindowBits: 12),
    ]

    func json(_ p: PerMessageDeflate.Parameters?) -> Any {
        guard let p else { return NSNull() }
        return ["sNCT": p.serverNoContextTakeover, "cNCT": p.clientNoContextTakeover,
                "sBits": p.serverMaxWindowBits, "cBits": p.clientMaxWindowBits]
    }

    var sampleMessages: [(kind: String, payload: [UInt8], fragments: Int)] {
        var rng = SplitMix64(seed: 99)
        let jsonText = Array(String(repeating: #"{"device":"sensor-17","reading":21.5,"unit":"°C"},"#, count: 60).utf8)
        return [
            ("text", Array("Hello".utf8), 1),
            ("text", jsonText, 1),
            ("text", jsonText, 4),
            ("binary", (0..<70000).map { _ in UInt8.random(in: 0...255, using: &rng) }, 1),
            ("binary", [UInt8](repeating: 42, count: 100_000), 7),
            ("text", [], 1),
            ("ping", Array("are you there".utf8), 1),
            ("text", Array("κόσμε 𝄞 ✓".utf8), 3),
            ("pong", [], 1),
            ("text", jsonText, 1),
        ]
    }

    func testFramesFromWsprotoParseWithOurReader() throws {
        for deflate in deflateCases {
            var messages: [[String: Any]] = sampleMessages.map { ["kind": $0.kind, "hex": hex($0.payload), "fragments": $0.fragments] }
            messages.append(["kind": "close", "hex": "", "code": 1000, "reason": "bye ✓"])
            let reply = try peer(["mode": "encode", "deflate": json(deflate), "messages": messages]) as! [String: Any]
            let wire = bytes(reply["hex"] as! String)
            var expected: [Recorded] = sampleMessages.map {
                switch $0.kind {
                case "text": return .text($0.payload)
                case "binary": return .binary($0.payload)
                case "ping": return .ping($0.payload)
                default: return .pong($0.payload)
                }
            }
            expected.append(.close(1000, "bye ✓"))
            if deflate != nil {
                XCTAssertTrue(wire.contains(0xC1), "wsproto compressed something")
            }
            XCTAssertEqual(parse(wire, role: .server, deflate: deflate), expected, "\(String(describing: deflate))")
            var rng = SplitMix64(seed: 5)
            XCTAssertEqual(parse(wire, pieces: randomPieces(wire.count, using: &rng, maxPiece: 3000), role: .server, deflate: deflate),
                           expected, "\(String(describing: deflate)) split")
        }
    }

    func testFramesFromOurWriterParseWithWsproto() throws {
        for deflate in deflateCases {
            for threshold in [0, 256] {
                var writer = WebSocketWriter(role: .server, deflate: deflate, compressionThreshold: threshold)
                var wire: [UInt8] = []
                var expected: [[String: String]] = []
                for m in sampleMessages {
                    m.payload.withUnsafeBytes { p in
                        switch m.kind {
                        case "text": writer.writeMessage(.text, payload: p, into: &wire)
                        case "binary": writer.writeMessage(.binary, payload: p, into: &wire)
                        case "ping": writer.writeControl(.ping, payload: p, into: &wire)
                        default: writer.writeControl(.pong, payload: p, into: &wire)
                        }
                    }
                    expected.append(["kind": m.kind, "hex": hex(m.payload)])
                }
                // A shared (fan-out) frame in the middle of the stream, then close.
                let shared = Array(String(repeating: "fan-out ", count: 100).utf8)
                wire += shared.withUnsafeBytes { WebSocketWriter.encodeShared(.text, payload: $0, compress: deflate) }
                expected.append(["kind": "text", "hex": hex(shared)])
                writer.writeClose(.goingAway, reason: "bye ✓", into: &wire)
                let reply = try peer(["mode": "decode", "deflate": json(deflate), "hex": hex(wire)]) as! [[String: Any]]
                XCTAssertEqual(reply.count, expected.count + 1, "\(String(describing: deflate)): \(reply.last ?? [:])")
                for (got, want) in zip(reply, expected) {
                    XCTAssertEqual(got["kind"] as? String, want["kind"])
                    XCTAssertEqual(got["hex"] as? String, want["hex"], "\(String(describing: deflate)) \(want["kind"]!)")
                }
                XCTAssertEqual(reply.last?["kind"] as? String, "close")
                XCTAssertEqual(reply.last?["code"] as? Int, 1001)
                XCTAssertEqual(reply.last?["reason"] as? String, "bye ✓")
            }
        }
    }

    func testAcceptKeyMatchesWebsockets() throws {
        var keys = ["dGhlIHNhbXBsZSBub25jZQ==", "x3JJHMbDL1EzLkh9GBhXDw=="]
        for _ in 0..<5 { keys.append(WebSocketClientHandshake().key) }
        let theirs = try peer(["mode": "accept", "keys": keys]) as! [String]
        XCTAssertEqual(theirs, keys.map { WebSocketHandshake.acceptValue(forKey: $0) })
    }
}
