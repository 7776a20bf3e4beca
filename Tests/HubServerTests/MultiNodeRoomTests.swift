import Foundation
import HubTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Rooms across two hub processes on one Redis and one PostgreSQL: events produced on both
/// nodes reach a subscriber on either in offset order without gaps or duplicates; a portal that
/// disconnects from one node resumes on the other with exactly what it missed; after Redis lost
/// the history (FLUSHALL) a resume is refused and the new epoch announced; a reader that stops
/// reading is bounded (RSS measured) and closed with 4008 `slow_consumer`.
final class MultiNodeRoomTests: XCTestCase {
    /// Two nodes and an org with an operator, an approver and a viewer, one device and an
    /// approved session whose commands of kind `uptime` need no approval.
    final class Cluster {
        /// One Redis, or (`redisCluster`) a three-master Redis Cluster.
        let redis: RedisTestServer?
        let redisCluster: RedisClusterTestServer?
        let postgres: PostgresTestServer
        let nodes: [HubProcess]
        let ports: [Int]
        let operatorUser = UUID(), approver = UUID(), viewer = UUID()
        var org = "", session = "", device = "", deviceToken = ""

        init(extraArguments: [String] = [], redisCluster useCluster: Bool = false) throws {
            redis = useCluster ? nil : try RedisTestServer.startPrivate()
            redisCluster = useCluster ? try RedisClusterTestServer.start() : nil
            postgres = try PostgresTestServer.start()
            let redisURL = redis?.url ?? redisCluster!.url
            let args = ["--host", "127.0.0.1", "--port", "0", "--loops", "2", "--redis-url", redisURL, "--postgres-url", postgres.url,
                        "--hash-key", testHashKey, "--admin-token", IdentityTestHub.adminToken,
                        "--supabase-jwt-secret", IdentityTestHub.jwtSecret, "--supabase-url", IdentityTestHub.supabaseURL] + extraArguments
            nodes = [try HubProcess(arguments: args + ["--node-id", "node-a"]), try HubProcess(arguments: args + ["--node-id", "node-b"])]
            ports = try nodes.map { try $0.waitUntilListening() }
            for port in ports {
                let deadline = Date().addingTimeInterval(20)
                while (try? TestClient(port: port).request("GET", "/readyz").status) != 200, Date() < deadline { usleep(50_000) }
            }
            let admin = IdentityTestHub.adminToken
            org = try XCTUnwrap(try call(0, "POST", "/api/v1/admin/orgs", bearer: admin, json: ["name": "Rooms"]).json?["id"] as? String)
            for (user, role) in [(operatorUser, "operator"), (approver, "approver"), (viewer, "viewer")] {
                XCTAssertEqual(try call(1, "POST", "/api/v1/admin/orgs/\(org)/members", bearer: admin, json: ["user_id": user.uuidString, "role": role]).status, 201)
            }
            XCTAssertEqual(try call(0, "PATCH", "/api/v1/admin/orgs/\(org)", bearer: admin, json: ["auto_approved_kinds": ["uptime"]]).status, 200)
            let code = try XCTUnwrap(try call(0, "POST", "/api/v1/customer/devices/provision", bearer: jwt(operatorUser),
                                              json: ["org_id": org, "name": "d"]).json?["activation_code"] as? String)
            let registered = try call(1, "POST", "/api/v1/device/register", json: ["activation_code": code])
            device = try XCTUnwrap(registered.json?["device_id"] as? String)
            let secret = try XCTUnwrap(registered.json?["device_secret"] as? String)
            deviceToken = try XCTUnwrap(try call(0, "POST", "/api/v1/device/auth", json: ["device_id": device, "device_secret": secret]).json?["token"] as? String)
            session = try XCTUnwrap(try call(0, "POST", "/api/v1/customer/sessions", bearer: jwt(operatorUser),
                                             json: ["device_id": device, "reason": "rooms"]).json?["id"] as? String)
            XCTAssertEqual(try call(1, "POST", "/api/v1/customer/sessions/\(session)/approve", bearer: jwt(approver), json: [:]).status, 200)
        }

        func jwt(_ user: UUID) -> String { IdentityTestHub.jwt(user) }
        var room: String { "session:\(session)" }

        @discardableResult
        func call(_ node: Int, _ method: String, _ path: String, bearer: String? = nil, json: [String: Any]? = nil) throws -> TestClient.Response {
            var headers: [String: String] = [:]
            if let bearer { headers["Authorization"] = "Bearer \(bearer)" }
            var body: String?
            if let json { headers["Content-Type"] = "application/json"; body = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self) }
            return try TestClient(port: ports[node]).request(method, path, headers: headers, body: body)
        }

        /// Proposes `count` commands through `node` (each announced in the session's room).
        func propose(_ count: Int, through node: Int) throws {
            for _ in 0..<count {
                let r = try call(node, "POST", "/api/v1/customer/sessions/\(session)/commands", bearer: jwt(operatorUser), json: ["kind": "uptime", "args": [:]])
                XCTAssertEqual(r.status, 201, r.text)
            }
        }

        /// The room's history offsets as Redis holds them (redis-cli: an independent reader). The
        /// key is `dh:stream:{<byte length>:<stream name>}` (`protocol/redis-keys.md`).
        func historyOffsets() throws -> [Int] {
            let stream = "room:\(room)"
            let text = try cli(key: "dh:stream:{\(stream.utf8.count):\(stream)}", ["XRANGE", "dh:stream:{\(stream.utf8.count):\(stream)}", "-", "+"])
            return text.split(separator: "\n").compactMap { line in
                line.hasSuffix("-0") ? Int(line.dropLast(2)) : nil
            }
        }

        /// How many subscriptions Redis counts on the room's channel (one per node listening).
        func channelSubscribers() throws -> Int {
            let channel = "dh:pubsub:room:\(room)"
            // On a cluster the channel is a shard channel, on the master owning its slot.
            let text = try cli(key: channel, ["PUBSUB", redisCluster == nil ? "NUMSUB" : "SHARDNUMSUB", channel])
            return Int(text.split(separator: "\n").last.map(String.init) ?? "") ?? -1
        }

        /// redis-cli on the Redis, or on the master serving `key`'s slot.
        func cli(key: String, _ args: [String]) throws -> String {
            if let redis { return String(decoding: try redis.cli(args), as: UTF8.self) }
            let cluster = redisCluster!
            return try cluster.cli(port: try cluster.port(servingSlot: try cluster.keyslot(key)), args)
        }

        /// Every key gone, on every master.
        func flushAll() throws {
            if let redis { _ = try redis.cli(["FLUSHALL"]) }
            for port in redisCluster?.ports ?? [] { _ = try redisCluster!.cli(port: port, ["FLUSHALL"]) }
        }

        func portal(node: Int, steps: [[String: Any]]) throws -> IdentityTestHub.Session {
            try IdentityTestHub.Session(port: ports[node], path: "/ws/customer", steps: steps, headers: ["Authorization": "Bearer \(jwt(viewer))"])
        }

        func stop() {
            for node in nodes { node.signal(SIGKILL) }
            redis?.stop()
            redisCluster?.stop()
            postgres.stop()
        }
    }

    func testEventsFromBothNodesArriveInOrderAndResumeOnTheOtherNode() throws {
        let c = try Cluster()
        defer { c.stop() }
        try eventsFromBothNodesArriveInOrderAndResume(c)
    }

    /// The same on a three-master Redis Cluster: the room's history and channel live on the
    /// shard owning their slots, each node subscribes the channel there (sharded pub/sub).
    func testEventsFromBothNodesArriveInOrderAndResumeOnTheOtherNodeOnARedisCluster() throws {
        let c = try Cluster(redisCluster: true)
        defer { c.stop() }
        try eventsFromBothNodesArriveInOrderAndResume(c)
    }

    private func eventsFromBothNodesArriveInOrderAndResume(_ c: Cluster) throws {
        // A portal on node B; events produced on A and B at once (their publishes cross).
        let live = try c.portal(node: 1, steps: [["send": ["type": "subscribe", "id": "s", "room": c.room]], ["recv": 1], ["ready": true], ["recv_for": 4.0]])
        try live.waitUntilReady()
        // Only the node with a subscriber listens to the room (no firehose): one subscriber.
        XCTAssertEqual(try c.channelSubscribers(), 1)
        DispatchQueue.concurrentPerform(iterations: 2) { node in try? c.propose(30, through: node) }
        let got = try live.finish()
        let ack = try XCTUnwrap(got.received.first)
        let start = try XCTUnwrap(ack["offset"] as? Int), epoch = try XCTUnwrap(ack["epoch"] as? String)
        let offsets = got.received.dropFirst().compactMap { $0["offset"] as? Int }
        let history = try c.historyOffsets()
        XCTAssertGreaterThanOrEqual(offsets.count, 60, "every proposal's events")
        XCTAssertEqual(offsets, history.filter { $0 > start }, "in offset order, no gap, no duplicate, equal to the history")
        XCTAssertTrue(got.received.dropFirst().allSatisfy { $0["epoch"] as? String == epoch })
        // The portal left: its node gives the room's channel back.
        var left = Date().addingTimeInterval(5)
        while try c.channelSubscribers() != 0, Date() < left { usleep(50_000) }
        XCTAssertEqual(try c.channelSubscribers(), 0, "the last member's leaving unsubscribes the node")

        // Disconnected after the first ten; more events meanwhile; resumed on node A.
        let seen = offsets[9]
        try c.propose(5, through: 1)
        var latest = 0
        let deadline = Date().addingTimeInterval(5)
        repeat { latest = try c.historyOffsets().last ?? 0; usleep(20_000) } while latest < (history.last ?? 0) + 5 && Date() < deadline
        let missed = latest - seen
        let resumed = try c.portal(node: 0, steps: [["send": ["type": "subscribe", "id": "r", "room": c.room, "since": ["epoch": epoch, "offset": seen]]],
                                                    ["recv": 1 + missed], ["recv_for": 0.5]]).finish()
        XCTAssertEqual(resumed.received.first?["recovered"] as? Bool, true, "\(resumed.received.prefix(2))")
        XCTAssertEqual(resumed.received.dropFirst().compactMap { $0["offset"] as? Int }, Array((seen + 1)...latest), "exactly what was missed")

        // Redis loses the history: the old position is refused, the new epoch announced.
        try c.flushAll()
        try c.propose(1, through: 0)
        let afterFlush = try c.portal(node: 1, steps: [["send": ["type": "subscribe", "id": "f", "room": c.room, "since": ["epoch": epoch, "offset": latest]]],
                                                       ["recv": 1], ["recv_for": 0.5]]).finish()
        XCTAssertEqual(afterFlush.received.count, 1, "nothing replayed: \(afterFlush.received)")
        XCTAssertEqual(afterFlush.received.first?["recovered"] as? Bool, false)
        let newEpoch = try XCTUnwrap(afterFlush.received.first?["epoch"] as? String)
        XCTAssertNotEqual(newEpoch, epoch, "a lost history comes back in a new epoch")
    }

    func testAStalledReaderIsBoundedAndClosedAsASlowConsumer() throws {
        let c = try Cluster(extraArguments: ["--subscriber-soft-limit", "65536", "--subscriber-hard-limit", "262144",
                                            "--requests-per-minute", "1000000"])
        defer { c.stop() }
        let node = c.nodes[1]
        // The device holds a command and reports progress with a 1.8 KB status map, each report
        // a ~2 KB `command.progress` event in the room (an event never dropped).
        try c.propose(1, through: 0)
        let claimed = try XCTUnwrap(try c.call(0, "POST", "/api/v1/device/commands/claim", bearer: c.deviceToken, json: ["max": 1]).json?["commands"] as? [[String: Any]])
        let command = try XCTUnwrap(claimed.first?["id"] as? String), lease = try XCTUnwrap(claimed.first?["lease_token"] as? String)
        let status = ["detail": String(repeating: "x", count: 1800)]
        let stalled = try StalledReader(port: c.ports[1], token: c.jwt(c.viewer), room: c.room, seconds: 20)
        let before = try residentKiB(node.process.processIdentifier)
        // 4,000 reports through both nodes: ~8 MB of events, more than the kernel's socket
        // buffers, the socket's own limit and the subscriber's limits together.
        var peak = before
        DispatchQueue.concurrentPerform(iterations: 3) { i in
            if i < 2 {
                for _ in 0..<2000 {
                    _ = try? c.call(i, "POST", "/api/v1/device/commands/\(command)/progress", bearer: c.deviceToken, json: ["lease_token": lease, "status": status])
                }
            } else {
                for _ in 0..<50 { if let rss = try? residentKiB(node.process.processIdentifier) { peak = max(peak, rss) }; usleep(100_000) }
            }
        }
        let result = try stalled.finish()
        // The close frame (4008) waits behind what the reader never read, so the reader finds
        // either it or, once the close timeout passed, the end of the connection.
        XCTAssertTrue(result["close_code"] as? Int == 4008 || result["eof"] as? Bool == true,
                      "closed as a slow consumer: \(result.filter { $0.key != "events" })")
        let offsets = result["events"] as? [Int] ?? []
        XCTAssertEqual(offsets, offsets.sorted(), "what it got before the close is in order")
        XCTAssertLessThan(offsets.count, 4000, "it did not get everything: it was cut off")
        // The stalled connection cost at most its limits (256 KiB + the socket's own soft
        // limit), where a growing buffer would have held the ~8 MB it did not read; the
        // process's RSS grows by less than 6 MiB with all the traffic.
        print("stalled reader: RSS before \(before) KiB, peak \(peak) KiB (+\(peak - before) KiB)")
        XCTAssertLessThan(peak - before, 6 * 1024, "RSS stays flat with a stalled reader")
        let metrics = try XCTUnwrap(try c.call(1, "GET", "/metrics").text)
        XCTAssertTrue(metrics.contains("devicehub_room_slow_consumers_total 1"), metrics.split(separator: "\n").filter { $0.contains("room") }.joined(separator: "\n"))
    }
}

extension MultiNodeRoomTests {
    /// A reader that stops reading while its device streams logs on the other node: the hub
    /// drops its oldest log events (never the status events), says so with `lagged`, keeps it
    /// connected, and its RSS stays flat.
    func testAStalledReaderLosesOldLogsNotStatusAndMemoryStaysFlat() throws {
        let c = try Cluster(extraArguments: ["--subscriber-soft-limit", "65536", "--subscriber-hard-limit", "1048576",
                                            "--requests-per-minute", "1000000"])
        defer { c.stop() }
        let node = c.nodes[1]
        try c.propose(1, through: 0)
        let claimed = try XCTUnwrap(try c.call(0, "POST", "/api/v1/device/commands/claim", bearer: c.deviceToken, json: ["max": 1]).json?["commands"] as? [[String: Any]])
        let command = try XCTUnwrap(claimed.first?["id"] as? String)
        let stalled = try StalledReader(port: c.ports[1], token: c.jwt(c.viewer), room: c.room, seconds: 16)
        let before = try residentKiB(node.process.processIdentifier)
        // The device on node A: 240 batches of 10 lines of 8 KB, one every 50 ms: ~19 MB of
        // execution.log in 12 s, while the reader reads nothing.
        let device = try IdentityTestHub.Session(port: c.ports[0], path: "/ws/device", steps: [
            ["send_logs": ["command_id": command, "batches": 240, "lines": 10, "bytes": 8_000, "interval": 0.05]], ["recv_for": 1.0],
        ], headers: ["Authorization": "Bearer \(c.deviceToken)"])
        var peak = before
        while device.process.isRunning {
            peak = max(peak, (try? residentKiB(node.process.processIdentifier)) ?? 0)
            usleep(100_000)
        }
        let streamed = try device.finish()
        // The device may be told to slow down (`rate_limited` when its batches wait on the
        // store); that is the device's side, not the subscriber's.
        XCTAssertTrue(streamed.received.allSatisfy { $0["code"] as? String ?? "rate_limited" == "rate_limited" }, "\(streamed.received.prefix(3))")
        // Status events meanwhile (never dropped): three proposals.
        try c.propose(3, through: 1)
        let result = try stalled.finish()
        let lagged = result["lagged"] as? [Int] ?? []
        let names = result["event_names"] as? [String: Int] ?? [:]
        let offsets = result["events"] as? [Int] ?? []
        print("stalled log reader: RSS before \(before) KiB, peak \(peak) KiB (+\(peak - before) KiB); got \(names), lagged \(lagged.reduce(0, +))")
        XCTAssertNil(result["close_code"] as? Int, "logs alone never close a subscriber: \(result.filter { $0.key != "events" })")
        XCTAssertGreaterThan(lagged.reduce(0, +), 0, "it was told it lost logs")
        XCTAssertEqual(names["command.status"], 3, "status events are never dropped")
        XCTAssertLessThan(names["execution.log"] ?? 0, 2400, "old logs were dropped")
        XCTAssertEqual(offsets, offsets.sorted(), "in order")
        XCTAssertEqual(Set(offsets).count, offsets.count, "no duplicates")
        XCTAssertLessThan(peak - before, 24 * 1024, "RSS stays flat under ~19 MB of logs for a stalled reader")
        let metrics = try c.call(1, "GET", "/metrics").text
        XCTAssertFalse(metrics.contains("devicehub_room_dropped_logs_total 0\n"), "the drops are counted")
    }
}

/// `ws_stall.py`: a portal on a raw socket that subscribes, then reads nothing for `seconds`
/// (returns once it is subscribed), then reads what is left and reports it.
struct StalledReader {
    let process = Process()
    let out = Pipe(), err = Pipe()

    init(port: Int, token: String, room: String, seconds: Int) throws {
        process.executableURL = URL(fileURLWithPath: try PythonPeer.interpreter())
        process.arguments = [PythonPeer.script("ws_stall.py"), "127.0.0.1", String(port), token, room, String(seconds)]
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let ready = Date().addingTimeInterval(15)
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("READY"), Date() < ready { seen.append(err.fileHandleForReading.availableData) }
    }

    func finish() throws -> [String: Any] {
        process.waitUntilExit()
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile()) as? [String: Any])
    }
}

/// VmRSS of a process, in KiB.
func residentKiB(_ pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else { throw TestError("no VmRSS for \(pid)") }
    return kib
}
