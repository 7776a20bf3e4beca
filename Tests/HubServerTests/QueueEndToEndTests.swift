import Foundation
import HubServer
import HubStore
import HubTestSupport
import XCTest

/// The command queue with human approval end to end over real sockets, on the embedded store
/// and on real Redis + PostgreSQL: every state a session and a command can reach, the lease
/// operations and their conflicts, and the records they leave.
final class QueueEndToEndTests: XCTestCase {
    // MARK: sessions

    func testSessionLifecycleEmbedded() async throws { try await sessionLifecycle(.embedded) }
    func testSessionLifecycleRedisPostgres() async throws { try await sessionLifecycle(.redisPostgres) }

    private func sessionLifecycle(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend) { $0.sessionApprovalTTL = 1; $0.reaperInterval = 0.1 }
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        let path = "/api/v1/customer/sessions"

        // Open: operator only; a viewer is 403; another org's user sees no device (404).
        try hub.expect(403, "POST", path, bearer: f.vw, json: ["device_id": f.device.uuidString, "reason": "x"])
        let stranger = UUID()
        _ = try hub.makeOrg("Other", members: [stranger: .admin])
        try hub.expect(404, "POST", path, bearer: IdentityTestHub.jwt(stranger), json: ["device_id": f.device.uuidString, "reason": "x"])
        try hub.expect(400, "POST", path, bearer: f.op, json: ["device_id": f.device.uuidString, "reason": ""])
        let s = try hub.expect(201, "POST", path, bearer: f.op, json: ["device_id": f.device.uuidString, "reason": "disk full?"])
        let id = try XCTUnwrap(s["id"] as? String)
        XCTAssertEqual(s["state"] as? String, "pending_approval")
        XCTAssertEqual(s["requested_by"] as? String, f.operatorUser.uuidString.lowercased())

        // Commands only go into active sessions.
        let early = try f.propose(id, "uptime", status: 409)
        XCTAssertEqual(early["state"] as? String, "pending_approval")

        // Four eyes: an approver may not approve their own request; the requester is refused
        // even when they hold the role; a viewer lacks the role; a foreign user sees nothing.
        let selfRequested = try hub.expect(201, "POST", path, bearer: f.ap, json: ["device_id": f.device.uuidString, "reason": "mine"])
        let selfID = try XCTUnwrap(selfRequested["id"] as? String)
        let fourEyes = try hub.expect(403, "POST", "\(path)/\(selfID)/approve", bearer: f.ap, json: [:])
        XCTAssertEqual(fourEyes["code"] as? String, "forbidden")
        try hub.expect(403, "POST", "\(path)/\(id)/approve", bearer: f.vw, json: [:])
        try hub.expect(404, "POST", "\(path)/\(id)/approve", bearer: IdentityTestHub.jwt(stranger), json: [:])
        try hub.expect(404, "GET", "\(path)/\(id)", bearer: IdentityTestHub.jwt(stranger))

        // Approve once; the second decision is 409 with the state the first left.
        let approved = try hub.expect(200, "POST", "\(path)/\(id)/approve", bearer: f.ap, json: ["note": "ok"])
        XCTAssertEqual(approved["state"] as? String, "active")
        XCTAssertEqual(approved["decided_by"] as? String, f.approver.uuidString.lowercased())
        XCTAssertEqual(try hub.expect(409, "POST", "\(path)/\(id)/reject", bearer: f.ap, json: [:])["state"] as? String, "active")

        // A proposal waiting for approval and a queued one are canceled by the close.
        let pending = try XCTUnwrap(try f.propose(id, "reboot")["id"] as? String)
        try f.autoApprove(["uptime"])
        let queued = try XCTUnwrap(try f.propose(id, "uptime")["id"] as? String)
        XCTAssertEqual(try f.command(queued)["state"] as? String, "queued")
        let closed = try hub.expect(200, "POST", "\(path)/\(id)/close", bearer: f.op)
        XCTAssertEqual(closed["state"] as? String, "closed")
        XCTAssertEqual(try f.command(pending)["state"] as? String, "canceled")
        XCTAssertEqual(try f.command(queued)["state"] as? String, "canceled")
        XCTAssertEqual(try f.claim().count, 0, "a canceled command is never delivered")
        XCTAssertEqual(try hub.expect(409, "POST", "\(path)/\(id)/close", bearer: f.op)["state"] as? String, "closed")

        // Reject, and expiry of an undecided session (TTL 1 s here) by the reaper.
        let r = try hub.expect(201, "POST", path, bearer: f.op, json: ["device_id": f.device.uuidString, "reason": "r"])
        let rejected = try hub.expect(200, "POST", "\(path)/\(r["id"]!)/reject", bearer: f.ap, json: [:])
        XCTAssertEqual(rejected["state"] as? String, "rejected")
        XCTAssertTrue(try QueueFixture.eventually {
            try hub.expect(200, "GET", "\(path)/\(selfID)", bearer: f.vw)["state"] as? String == "expired"
        }, "the reaper expires a session nobody decided")
        let late = try hub.expect(409, "POST", "\(path)/\(selfID)/approve", bearer: f.ap, json: [:])
        XCTAssertEqual(late["state"] as? String, "expired")

        // The list: newest first, state filter, cursor paging without gaps or repeats.
        var seen: [String] = []
        var cursor = ""
        repeat {
            let page = try hub.expect(200, "GET", "\(path)?org_id=\(f.org.uuidString)&limit=1&cursor=\(cursor)", bearer: f.vw)
            seen += (page["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            cursor = page["next_cursor"] as? String ?? ""
        } while !cursor.isEmpty
        XCTAssertEqual(seen.count, 3)
        XCTAssertEqual(Set(seen).count, 3)
        XCTAssertEqual(seen.first, r["id"] as? String, "newest first")
        let onlyClosed = try hub.expect(200, "GET", "\(path)?org_id=\(f.org.uuidString)&state=closed", bearer: f.vw)
        XCTAssertEqual((onlyClosed["items"] as? [[String: Any]])?.map { $0["id"] as? String }, [id])
        try hub.expect(404, "GET", "\(path)?org_id=\(f.org.uuidString)", bearer: IdentityTestHub.jwt(stranger))

        // The audit trail names who did what.
        let actions = try await hub.stores.records.audit(orgID: f.org, beforeID: nil, limit: 100).map(\.action)
        for action in ["session.open", "session.approve", "session.reject", "session.close", "session.expire"] {
            XCTAssertTrue(actions.contains(action), "\(action) audited: \(actions)")
        }
    }

    // MARK: commands and leases

    func testCommandLifecycleEmbedded() async throws { try await commandLifecycle(.embedded) }
    func testCommandLifecycleRedisPostgres() async throws { try await commandLifecycle(.redisPostgres) }
    func testCommandLifecycleRedisCluster() async throws { try await commandLifecycle(.redisCluster) }

    private func commandLifecycle(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        let session = try f.activeSession()

        // Needs its own approval (not in the org's list); the proposer may not approve it.
        let proposed = try f.propose(session, "disk.usage", extra: ["args": ["path": "/var"], "priority": "critical"])
        let id = try XCTUnwrap(proposed["id"] as? String)
        XCTAssertEqual(proposed["state"] as? String, "pending_approval")
        XCTAssertEqual(proposed["needs_approval"] as? Bool, true)
        XCTAssertEqual(try f.claim().count, 0, "nothing runs before approval")
        try hub.expect(403, "POST", "/api/v1/customer/commands/\(id)/approve", bearer: f.op, json: [:])
        let approved = try hub.expect(200, "POST", "/api/v1/customer/commands/\(id)/approve", bearer: f.ap)
        XCTAssertEqual(approved["state"] as? String, "queued")
        XCTAssertEqual(try hub.expect(409, "POST", "/api/v1/customer/commands/\(id)/approve", bearer: f.ap)["state"] as? String, "queued")

        // Claim: the lease and the command as the device runs it.
        let claimed = try f.claim(max: 5)
        XCTAssertEqual(claimed.count, 1)
        let c = try XCTUnwrap(claimed.first)
        XCTAssertEqual(c["id"] as? String, id)
        XCTAssertEqual(c["kind"] as? String, "disk.usage")
        XCTAssertEqual((c["args"] as? [String: Any])?["path"] as? String, "/var")
        XCTAssertEqual(c["priority"] as? String, "critical")
        XCTAssertEqual(c["attempt"] as? Int, 1)
        let token = try XCTUnwrap(c["lease_token"] as? String)
        XCTAssertNotNil(c["lease_expires_at"] as? String)
        XCTAssertEqual(try f.command(id)["state"] as? String, "claimed")
        XCTAssertEqual(try f.claim().count, 0, "a claimed command is not handed out twice")

        // A foreign token and another device are refused; extend and progress with the lease.
        XCTAssertEqual(try f.lease("extend", id, status: 409, ["lease_token": UUID().uuidString, "seconds": 30])["state"] as? String, "claimed")
        try f.lease("extend", id, status: 400, ["lease_token": token, "seconds": 0])
        let extended = try f.lease("extend", id, ["lease_token": token, "seconds": 120])
        XCTAssertEqual(extended["state"] as? String, "claimed")
        XCTAssertNotNil(extended["lease_expires_at"] as? String)
        try f.lease("progress", id, ["lease_token": token, "percent": 40, "status": ["step": "scan"]])
        try f.lease("progress", id, status: 400, ["lease_token": token, "percent": 101])
        let other = try hub.makeDevice(org: f.org, as: f.operatorUser, name: "other")
        let otherToken = try hub.deviceToken(other.id, other.secret)
        try hub.expect(404, "POST", "/api/v1/device/commands/\(id)/result", bearer: otherToken, json: ["lease_token": token, "status": "succeeded"])

        // Result: once; the same again is the same answer; a different body or a later extend is 409.
        let result: [String: Any] = ["lease_token": token, "status": "succeeded", "exit_code": 0, "output": "42% used"]
        XCTAssertEqual(try f.lease("result", id, result)["state"] as? String, "succeeded")
        XCTAssertEqual(try f.lease("result", id, result)["state"] as? String, "succeeded", "idempotent for the same lease and body")
        var different = result
        different["exit_code"] = 3
        XCTAssertEqual(try f.lease("result", id, status: 409, different)["state"] as? String, "succeeded")
        let lateExtend = try f.lease("extend", id, status: 409, ["lease_token": token, "seconds": 10])
        XCTAssertEqual(lateExtend["code"] as? String, "lease_conflict")
        XCTAssertEqual(lateExtend["state"] as? String, "succeeded")
        let done = try f.command(id)
        XCTAssertEqual(done["state"] as? String, "succeeded")
        XCTAssertEqual(done["exit_code"] as? Int, 0)
        XCTAssertEqual(done["output"] as? String, "42% used")
        XCTAssertEqual(done["attempts"] as? Int, 1)
        XCTAssertFalse(done.keys.contains("lease_token"), "customers never see lease tokens")
        let events = try await f.events(id)
        XCTAssertEqual(events, ["proposed", "approved", "claimed", "progress", "result"], "one recorded result")

        // The room events, in order: the session's room and the org's approval feed.
        var sessionRoom: [String] = []
        let settled = try await QueueFixture.eventuallyAsync {
            sessionRoom = try await QueueFixture.roomEvents(hub, "session:\(session)")
            return sessionRoom.count >= 7
        }
        XCTAssertTrue(settled)
        // Opened, approved; proposed (pending), approved (queued), claimed, progress, result.
        XCTAssertEqual(sessionRoom, ["session.status", "session.status", "command.status", "command.status", "command.status",
                                     "command.progress", "command.status"])
        let orgRoom = try await QueueFixture.roomEvents(hub, "org:\(f.org.uuidString.lowercased())")
        XCTAssertEqual(orgRoom, ["session.status", "approval.requested", "session.status", "approval.decided",
                                 "approval.requested", "approval.decided"], "\(orgRoom)")

        // Reject and cancel of pending commands; cancel of a finished one is 409.
        let r = try XCTUnwrap(try f.propose(session, "reboot")["id"] as? String)
        XCTAssertEqual(try hub.expect(200, "POST", "/api/v1/customer/commands/\(r)/reject", bearer: f.ap)["state"] as? String, "rejected")
        let k = try XCTUnwrap(try f.propose(session, "reboot")["id"] as? String)
        XCTAssertEqual(try hub.expect(200, "POST", "/api/v1/customer/commands/\(k)/cancel", bearer: f.op)["state"] as? String, "canceled")
        XCTAssertEqual(try hub.expect(409, "POST", "/api/v1/customer/commands/\(id)/cancel", bearer: f.op)["state"] as? String, "succeeded")

        // The session's list with a state filter and a cursor.
        let listed = try hub.expect(200, "GET", "/api/v1/customer/sessions/\(session)/commands?state=rejected,canceled", bearer: f.vw)
        XCTAssertEqual(Set((listed["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }), [r, k])
        let page1 = try hub.expect(200, "GET", "/api/v1/customer/sessions/\(session)/commands?limit=2", bearer: f.vw)
        let cursor = try XCTUnwrap(page1["next_cursor"] as? String)
        let page2 = try hub.expect(200, "GET", "/api/v1/customer/sessions/\(session)/commands?limit=2&cursor=\(cursor)", bearer: f.vw)
        XCTAssertEqual(((page1["items"] as? [[String: Any]]) ?? []).count + ((page2["items"] as? [[String: Any]]) ?? []).count, 3)

        // The queue metrics count what is unfinished per org, state and priority.
        try f.autoApprove(["uptime"])
        _ = try f.propose(session, "uptime", extra: ["priority": "bulk"])
        let metrics = try hub.expect(200, "GET", "/api/v1/queue/metrics?org_id=\(f.org.uuidString)", bearer: f.vw)
        let rows = metrics["items"] as? [[String: Any]] ?? []
        XCTAssertEqual(rows.count, 1, "\(rows)")
        XCTAssertEqual(rows.first?["state"] as? String, "queued")
        XCTAssertEqual(rows.first?["priority"] as? String, "bulk")
        XCTAssertEqual(rows.first?["count"] as? Int, 1)
        let scraped = try TestClient(port: hub.port).request("GET", "/metrics").text
        XCTAssertEqual(MetricsText.value(scraped, "devicehub_queue_claims_total"), 1)
        XCTAssertEqual(MetricsText.value(scraped, "devicehub_queue_results_total{status=\"succeeded\"}"), 1)
        XCTAssertEqual(MetricsText.value(scraped, "devicehub_approval_wait_seconds_count"), 3, "the session's approval, the command's approval and rejection")
    }

    // MARK: order, redelivery, dead letters, release, TTL

    func testQueueSemanticsEmbedded() async throws { try await queueSemantics(.embedded) }
    func testQueueSemanticsRedisPostgres() async throws { try await queueSemantics(.redisPostgres) }
    func testQueueSemanticsRedisCluster() async throws { try await queueSemantics(.redisCluster) }

    private func queueSemantics(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend) { $0.reaperInterval = 0.1 }
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()

        // Priorities first, FIFO within a class.
        let b1 = try f.propose(session, "job", extra: ["priority": "bulk"])["id"] as? String
        let d1 = try f.propose(session, "job")["id"] as? String
        let c1 = try f.propose(session, "job", extra: ["priority": "critical"])["id"] as? String
        let d2 = try f.propose(session, "job")["id"] as? String
        let order = try f.claim(max: 10).map { $0["id"] as? String }
        XCTAssertEqual(order, [c1, d1, d2, b1], hub.logs.lines().suffix(30).joined(separator: "\n"))
        for c in try await hub.stores.records.commands(sessionID: UUID(uuidString: session)!, states: [.claimed], afterSeq: 0, limit: 10) {
            XCTAssertEqual(c.attempts, 1)
        }

        // A lapsed lease goes back in line; the old lease is stale afterwards; after
        // max_attempts deliveries the command is dead-lettered, recorded once.
        let x = try XCTUnwrap(try f.propose(session, "job", extra: ["visibility_timeout_seconds": 1, "max_attempts": 2])["id"] as? String)
        var first: [String: Any] = [:]
        XCTAssertTrue(try QueueFixture.eventually { first = try f.claim().first ?? [:]; return first["id"] as? String == x })
        usleep(1_200_000)
        var second: [String: Any] = [:]
        XCTAssertTrue(try QueueFixture.eventually { second = try f.claim().first ?? [:]; return second["id"] as? String == x })
        XCTAssertEqual(second["attempt"] as? Int, 2)
        let stale = try f.lease("result", x, status: 409, ["lease_token": first["lease_token"]!, "status": "succeeded"])
        XCTAssertEqual(stale["state"] as? String, "claimed", "a result after the lease lapsed and the command was redelivered")
        XCTAssertTrue(try QueueFixture.eventually { try f.command(x)["state"] as? String == "dead_lettered" })
        let xEvents = try await f.events(x)
        XCTAssertEqual(xEvents.filter { $0 == "claimed" }.count, 2)
        XCTAssertEqual(xEvents.filter { $0 == "dead_lettered" }.count, 1, "\(xEvents)")
        XCTAssertFalse(xEvents.contains("result"))

        // Release with a delay: not claimable before it, claimable after, counted as a delivery.
        let y = try XCTUnwrap(try f.propose(session, "job", extra: ["max_attempts": 5])["id"] as? String)
        let yLease = try XCTUnwrap(try f.claim().first { $0["id"] as? String == y })
        XCTAssertEqual(try f.lease("release", y, ["lease_token": yLease["lease_token"]!, "delay_seconds": 1])["state"] as? String, "queued")
        XCTAssertFalse(try f.claim().contains { $0["id"] as? String == y }, "released with a delay: not yet")
        usleep(1_100_000)
        let again = try XCTUnwrap(try f.claim().first { $0["id"] as? String == y })
        XCTAssertEqual(again["attempt"] as? Int, 2)
        try f.lease("release", y, status: 409, ["lease_token": yLease["lease_token"]!])

        // TTL: a queued command whose TTL lapses ends as expired.
        let z = try XCTUnwrap(try f.propose(session, "job", extra: ["ttl_seconds": 1])["id"] as? String)
        XCTAssertTrue(try QueueFixture.eventually { try f.command(z)["state"] as? String == "expired" })
        XCTAssertFalse(try f.claim(max: 10).contains { $0["id"] as? String == z })
        // A pending one too (only the records know it).
        let p = try XCTUnwrap(try f.propose(session, "reboot", extra: ["ttl_seconds": 1])["id"] as? String)
        XCTAssertTrue(try QueueFixture.eventually { try f.command(p)["state"] as? String == "expired" })
    }

    // MARK: cancel reaches the agent; long polls wake

    func testCancelAndWakeUpsEmbedded() async throws { try await cancelAndWakeUps(.embedded) }
    func testCancelAndWakeUpsRedisPostgres() async throws { try await cancelAndWakeUps(.redisPostgres) }
    func testCancelAndWakeUpsRedisCluster() async throws { try await cancelAndWakeUps(.redisCluster) }

    private func cancelAndWakeUps(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()

        // The device socket: a proposal pushes command.available; a claim over the socket; a
        // cancel of the claimed command pushes command.cancel, and its result is then 409.
        let ws = try hub.socket("/ws/device", steps: [
            ["ready": true], ["recv": 1],
            ["send": ["type": "claim", "id": "c1", "max": 1]], ["recv": 1],
            ["recv": 1],
        ], bearer: f.deviceToken)
        try ws.waitUntilReady()
        usleep(200_000)
        let id = try XCTUnwrap(try f.propose(session, "job")["id"] as? String)
        // Wait for the socket's claim to land, then cancel.
        XCTAssertTrue(try QueueFixture.eventually { try f.command(id)["state"] as? String == "claimed" })
        XCTAssertEqual(try hub.expect(200, "POST", "/api/v1/customer/commands/\(id)/cancel", bearer: f.op)["state"] as? String, "canceled")
        let got = try ws.finish()
        XCTAssertEqual(got.received.map { $0["type"] as? String }, ["command.available", "commands", "command.cancel"])
        XCTAssertEqual(got.received[1]["id"] as? String, "c1")
        let delivered = try XCTUnwrap((got.received[1]["commands"] as? [[String: Any]])?.first)
        XCTAssertEqual(delivered["id"] as? String, id)
        XCTAssertEqual(got.received[2]["command_id"] as? String, id)
        let late = try f.lease("result", id, status: 409, ["lease_token": delivered["lease_token"]!, "status": "succeeded"])
        XCTAssertEqual(late["state"] as? String, "canceled")

        // A long poll returns as soon as a command is proposed, not at its deadline.
        let started = Date()
        var polled: [[String: Any]] = []
        let poller = Thread { polled = (try? f.claim(wait: 10)) ?? [] }
        poller.start()
        usleep(300_000)
        let w = try XCTUnwrap(try f.propose(session, "job")["id"] as? String)
        XCTAssertTrue(try QueueFixture.eventually(timeout: 8) { !polled.isEmpty })
        XCTAssertEqual(polled.first?["id"] as? String, w)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "woken by the proposal")
        try f.lease("result", w, ["lease_token": polled[0]["lease_token"]!, "status": "failed", "exit_code": 2])
        XCTAssertEqual(try f.command(w)["state"] as? String, "failed")
    }

    // MARK: bad input, idempotency, the per-device cap

    func testInputLimitsIdempotencyAndCapEmbedded() async throws { try await inputLimits(.embedded) }
    func testInputLimitsIdempotencyAndCapRedisPostgres() async throws { try await inputLimits(.redisPostgres) }

    private func inputLimits(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend) { $0.deviceQueueCap = 3 }
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        let session = try f.activeSession()
        let before = try await hub.stores.records.commands(sessionID: UUID(uuidString: session)!, states: nil, afterSeq: 0, limit: 100).count

        let bad: [[String: Any]] = [
            ["kind": "Bad Kind", "args": [:]], ["kind": "1abc", "args": [:]], ["kind": String(repeating: "a", count: 65), "args": [:]],
            ["kind": "ok", "args": [1, 2]], ["kind": "ok", "args": "text"], ["kind": "ok"],
            ["kind": "ok", "args": ["x": String(repeating: "y", count: 17_000)]],
            ["kind": "ok", "args": [:], "priority": "urgent"], ["kind": "ok", "args": [:], "ttl_seconds": -1],
            ["kind": "ok", "args": [:], "ttl_seconds": 10_000_000], ["kind": "ok", "args": [:], "max_attempts": 0],
            ["kind": "ok", "args": [:], "visibility_timeout_seconds": 43_201], ["kind": "ok", "args": [:], "idempotency_key": ""],
            ["kind": "ok", "args": [:], "idempotency_key": String(repeating: "k", count: 129)],
        ]
        for body in bad {
            let r = try hub.expect(400, "POST", "/api/v1/customer/sessions/\(session)/commands", bearer: f.op, json: body)
            XCTAssertTrue(["invalid_argument", "invalid_json"].contains(r["code"] as? String ?? ""), "\(body): \(r)")
        }
        try hub.expect(404, "POST", "/api/v1/customer/sessions/\(UUID())/commands", bearer: f.op, json: ["kind": "ok", "args": [:]])
        try hub.expect(404, "POST", "/api/v1/device/commands/\(UUID())/result", bearer: f.deviceToken, json: ["lease_token": UUID().uuidString, "status": "succeeded"])
        try hub.expect(400, "POST", "/api/v1/device/commands/claim", bearer: f.deviceToken, json: ["max": 0])
        try hub.expect(400, "POST", "/api/v1/device/commands/claim", bearer: f.deviceToken, json: ["wait_seconds": 21])
        try hub.expect(401, "POST", "/api/v1/device/commands/claim", json: [:])
        let after = try await hub.stores.records.commands(sessionID: UUID(uuidString: session)!, states: nil, afterSeq: 0, limit: 100).count
        XCTAssertEqual(after, before, "nothing written for bad input")

        // The same idempotency key returns the first command (200, marked), never a second.
        let first = try f.propose(session, "reboot", extra: ["idempotency_key": "abc-1"])
        let replay = try hub.request("POST", "/api/v1/customer/sessions/\(session)/commands", bearer: f.op,
                                     json: ["kind": "reboot", "args": [:], "idempotency_key": "abc-1"])
        XCTAssertEqual(replay.status, 200)
        XCTAssertEqual(replay.header("Idempotent-Replayed"), "true")
        XCTAssertEqual(replay.json?["id"] as? String, first["id"] as? String)

        // The cap counts unfinished commands of the device: 429 queue_full with Retry-After.
        _ = try f.propose(session, "reboot")
        _ = try f.propose(session, "reboot")
        let full = try hub.request("POST", "/api/v1/customer/sessions/\(session)/commands", bearer: f.op, json: ["kind": "reboot", "args": [:]])
        XCTAssertEqual(full.status, 429)
        XCTAssertEqual(full.json?["code"] as? String, "queue_full")
        XCTAssertNotNil(full.header("Retry-After"))
        let total = try await hub.stores.records.commands(sessionID: UUID(uuidString: session)!, states: nil, afterSeq: 0, limit: 100).count
        XCTAssertEqual(total, 3)
    }
}

/// The device socket's lease messages, validated against protocol/ws by the Python peer.
final class DeviceSocketQueueTests: XCTestCase {
    func testLeaseMessagesOverTheDeviceSocket() async throws {
        let hub = try await IdentityTestHub(.embedded)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()
        let id = try XCTUnwrap(try f.propose(session, "job")["id"] as? String)
        let lease = try XCTUnwrap(try f.claim().first)
        let token = try XCTUnwrap(lease["lease_token"] as? String)
        let ws = try hub.socket("/ws/device", steps: [
            ["send": ["type": "progress", "id": "p", "command_id": id, "lease_token": token, "percent": 50, "status": ["phase": "copy"]]], ["recv": 1],
            ["send": ["type": "extend", "id": "e", "command_id": id, "lease_token": token, "seconds": 60]], ["recv": 1],
            ["send": ["type": "extend", "id": "x", "command_id": id, "lease_token": UUID().uuidString, "seconds": 60]], ["recv": 1],
            ["send": ["type": "result", "id": "r", "command_id": id, "lease_token": token, "status": "succeeded", "exit_code": 0, "output": "ok"]], ["recv": 1],
            ["send": ["type": "result", "id": "r2", "command_id": id, "lease_token": token, "status": "succeeded", "exit_code": 0, "output": "ok"]], ["recv": 1],
            ["send": ["type": "release", "id": "l", "command_id": id, "lease_token": token]], ["recv": 1],
            ["send": ["type": "result", "id": "b", "command_id": "nope", "lease_token": token, "status": "succeeded"]], ["recv": 1],
            ["send": ["type": "claim", "id": "c", "max": 0]], ["recv": 1],
            ["send": ["type": "claim", "id": "c2"]], ["recv": 1],
        ], bearer: f.deviceToken)
        let got = try ws.finish()
        let byID = Dictionary(got.received.compactMap { m in (m["id"] as? String).map { ($0, m) } }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byID["p"]?["type"] as? String, "ack")
        XCTAssertEqual(byID["p"]?["state"] as? String, "claimed")
        XCTAssertEqual(byID["e"]?["type"] as? String, "ack")
        XCTAssertNotNil(byID["e"]?["lease_expires_at"] as? String)
        XCTAssertEqual(byID["x"]?["code"] as? String, "lease_conflict")
        XCTAssertEqual(byID["x"]?["state"] as? String, "claimed")
        XCTAssertEqual(byID["r"]?["state"] as? String, "succeeded")
        XCTAssertEqual(byID["r2"]?["state"] as? String, "succeeded", "a repeated result is answered the same")
        XCTAssertEqual(byID["l"]?["code"] as? String, "lease_conflict")
        XCTAssertEqual(byID["l"]?["state"] as? String, "succeeded")
        XCTAssertEqual(byID["b"]?["code"] as? String, "invalid_argument")
        XCTAssertEqual(byID["c"]?["code"] as? String, "invalid_argument")
        XCTAssertEqual(byID["c2"]?["type"] as? String, "commands")
        XCTAssertEqual((byID["c2"]?["commands"] as? [Any])?.count, 0)
        let events = try await f.events(id)
        XCTAssertEqual(events, ["proposed", "claimed", "progress", "result"])
        let record = try await hub.stores.records.command(id: UUID(uuidString: id)!)
        XCTAssertEqual(record?.outputSummary, "ok")
    }
}

/// A drain does not wait for long polls: they answer at once with what there is.
final class QueueDrainTests: XCTestCase {
    func testDrainEndsLongPolls() async throws {
        let hub = try await IdentityTestHub(.embedded)
        let f = try QueueFixture(hub)
        var polled: TestClient.Response?
        let poller = Thread { polled = try? TestClient(port: hub.port).request("POST", "/api/v1/device/commands/claim",
            headers: ["Authorization": "Bearer \(f.deviceToken)", "Content-Type": "application/json"], body: #"{"wait_seconds":20}"#) }
        poller.start()
        usleep(500_000)
        let started = Date()
        XCTAssertTrue(hub.server.drain(gracePeriod: 15), "drained cleanly")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the long poll did not hold the drain")
        XCTAssertTrue(try QueueFixture.eventually(timeout: 2) { polled != nil })
        XCTAssertEqual(polled?.status, 200)
        XCTAssertEqual((polled?.json?["commands"] as? [Any])?.count, 0)
        hub.stop()
    }
}

/// API keys on the queue: a key with `commands:propose` proposes and cancels in its own org,
/// never approves (approvals are made by people); a key without the scope is refused; a key of
/// another org sees nothing (404, like a missing id).
final class QueueAPIKeyTests: XCTestCase {
    func testAPIKeysProposeButNeverApprove() async throws {
        let hub = try await IdentityTestHub(.embedded)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        let session = try f.activeSession()
        func key(org: UUID, scopes: [String]) throws -> String {
            let k = try hub.expect(201, "POST", "/api/v1/admin/api-keys", bearer: IdentityTestHub.adminToken,
                                   json: ["org_id": org.uuidString, "name": "k", "scopes": scopes])
            return try XCTUnwrap(k["key"] as? String)
        }
        let proposer = try key(org: f.org, scopes: ["commands:propose", "sessions:read", "devices:read"])
        let reader = try key(org: f.org, scopes: ["sessions:read"])
        let otherOrg = try hub.makeOrg("Elsewhere")
        let foreign = try key(org: otherOrg, scopes: ["commands:propose", "sessions:read", "devices:read"])
        let path = "/api/v1/customer/sessions/\(session)/commands"

        let proposed = try hub.expect(201, "POST", path, apiKey: proposer, json: ["kind": "reboot", "args": [:]])
        let id = try XCTUnwrap(proposed["id"] as? String)
        let keys = try await hub.stores.records.apiKeys(orgID: f.org, limit: 10)
        let proposerID = try XCTUnwrap(keys.first { $0.scopes.contains("commands:propose") }).id
        XCTAssertEqual(proposed["proposed_by"] as? String, proposerID.uuidString.lowercased(), "the key is the proposer")
        XCTAssertEqual(try hub.expect(403, "POST", path, apiKey: reader, json: ["kind": "reboot", "args": [:]])["code"] as? String, "forbidden")
        try hub.expect(403, "POST", "/api/v1/customer/commands/\(id)/approve", apiKey: proposer)
        let a = try hub.expect(404, "GET", "/api/v1/customer/commands/\(id)", apiKey: foreign)
        let b = try hub.expect(404, "GET", "/api/v1/customer/commands/\(UUID())", apiKey: foreign)
        XCTAssertEqual(problemShape(a), problemShape(b), "a foreign command looks missing")
        try hub.expect(404, "POST", path, apiKey: foreign, json: ["kind": "reboot", "args": [:]])
        try hub.expect(404, "POST", "/api/v1/customer/commands/\(id)/cancel", apiKey: foreign)
        try hub.expect(404, "GET", "/api/v1/customer/sessions/\(session)/commands", bearer: IdentityTestHub.jwt(UUID()))
        XCTAssertEqual(try hub.expect(200, "POST", "/api/v1/customer/commands/\(id)/cancel", apiKey: proposer)["state"] as? String, "canceled")

        // Queue metrics (scope devices:read): a key sees its org only; the admin token any org;
        // a key without the scope is refused.
        try hub.expect(403, "GET", "/api/v1/queue/metrics", apiKey: reader)
        let pending = try hub.expect(201, "POST", path, apiKey: proposer, json: ["kind": "reboot", "args": [:]])
        XCTAssertEqual(pending["state"] as? String, "pending_approval")
        let mine = try hub.expect(200, "GET", "/api/v1/queue/metrics", apiKey: proposer)["items"] as? [[String: Any]] ?? []
        XCTAssertEqual(mine.map { $0["state"] as? String }, ["pending_approval"])
        XCTAssertEqual(mine.first?["count"] as? Int, 1)
        XCTAssertEqual((try hub.expect(200, "GET", "/api/v1/queue/metrics", apiKey: foreign)["items"] as? [Any])?.count, 0)
        try hub.expect(404, "GET", "/api/v1/queue/metrics?org_id=\(f.org.uuidString)", apiKey: foreign)
        let all = try hub.expect(200, "GET", "/api/v1/queue/metrics?org_id=\(f.org.uuidString)", bearer: IdentityTestHub.adminToken)
        XCTAssertEqual((all["items"] as? [[String: Any]])?.first?["org_id"] as? String, f.org.uuidString.lowercased())
    }
}
