import Foundation
import HubServer
import HubStore
import HubTestSupport
import XCTest

/// The hot queue lost (Redis flushed) and rebuilt from the records by the hub itself, before it
/// claims again; a device's result for the lease it held is still accepted from the record.
final class QueueRebuildTests: XCTestCase {
    func testQueueRebuildsAfterRedisFlush() async throws {
        let hub = try await IdentityTestHub(.redisPostgres)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()
        let held = try XCTUnwrap(try f.propose(session, "job", extra: ["priority": "critical"])["id"] as? String)
        let lease = try XCTUnwrap(try f.claim().first)
        XCTAssertEqual(lease["id"] as? String, held)
        var waiting: [String] = []
        for p in ["bulk", "default", "critical"] { waiting.append(try XCTUnwrap(try f.propose(session, "job", extra: ["priority": p])["id"] as? String)) }
        let rebuildsBefore = MetricsText.value(try TestClient(port: hub.port).request("GET", "/metrics").text, "devicehub_queue_rebuilds_total") ?? -1

        let redisPort = try XCTUnwrap(hub.redisURL.flatMap { URL(string: $0)?.port })
        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cli.arguments = ["redis-cli", "-p", String(redisPort), "FLUSHALL"]
        try cli.run()
        cli.waitUntilExit()
        XCTAssertEqual(cli.terminationStatus, 0)

        // Device tokens lived in Redis: the agent authenticates again (once the nodes' one-second
        // memory of recently validated tokens has passed).
        XCTAssertTrue(try QueueFixture.eventually(timeout: 5) {
            try hub.request("GET", "/api/v1/device/me", bearer: f.deviceToken).status == 401
        })
        // (The fixture kept no secret; rotate to get one, as an operator would.)
        let rotated = try hub.expect(200, "POST", "/api/v1/customer/devices/\(f.device.uuidString)/rotate-secret", bearer: f.op)
        let token = try hub.deviceToken(f.device, try XCTUnwrap(rotated["device_secret"] as? String))

        // The result for the lease held before the flush is accepted: the record shows it.
        let result = try hub.expect(200, "POST", "/api/v1/device/commands/\(held)/result", bearer: token,
                                    json: ["lease_token": lease["lease_token"]!, "status": "succeeded", "exit_code": 0])
        XCTAssertEqual(result["state"] as? String, "succeeded")

        // The waiting commands come back, in priority order, each once; the finished one never.
        var claimed: [String] = []
        XCTAssertTrue(try QueueFixture.eventually(timeout: 10) {
            claimed += (try f.claim(max: 10, token: token)).compactMap { $0["id"] as? String }
            return claimed.count >= 3
        })
        XCTAssertEqual(claimed, [waiting[2], waiting[1], waiting[0]])
        XCTAssertEqual(try f.claim(max: 10, token: token).count, 0)
        let scraped = try TestClient(port: hub.port).request("GET", "/metrics").text
        XCTAssertEqual(MetricsText.value(scraped, "devicehub_queue_rebuilds_total"), rebuildsBefore + 1)
        let heldEvents = try await f.events(held)
        XCTAssertEqual(heldEvents.filter { $0 == "result" }.count, 1)
        XCTAssertEqual(heldEvents.filter { $0 == "claimed" }.count, 1, "not redelivered after its result: \(heldEvents)")
    }
}

/// The reconciler brings records up to what the hot queue did when the node that did it died
/// before its record write: simulated by ending commands in the queue directly, as a node
/// would just before being killed.
final class QueueReconcileTests: XCTestCase {
    func testRecordsCatchUpWithTheQueue() async throws {
        let hub = try await IdentityTestHub(.embedded) { $0.reaperInterval = 60; $0.queueReconcileInterval = 1 }
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()
        let queue = f.device.uuidString.lowercased()

        // A TTL lapse the sweeping node never recorded.
        let expiring = try XCTUnwrap(try f.propose(session, "job", extra: ["ttl_seconds": 1])["id"] as? String)
        usleep(1_100_000)
        let swept = try await hub.stores.queue.sweep(now: .now(), limit: 10)
        XCTAssertEqual(swept.map(\.id.uuidString).map { $0.lowercased() }, [expiring])
        XCTAssertEqual(try f.command(expiring)["state"] as? String, "queued", "the record missed it")

        // A result the queue accepted, recorded by nobody.
        let done = try XCTUnwrap(try f.propose(session, "job")["id"] as? String)
        let lease = try XCTUnwrap(try f.claim().first { $0["id"] as? String == done })
        let token = try XCTUnwrap(UUID(uuidString: lease["lease_token"] as? String ?? ""))
        let outcome = QueueOutcome(succeeded: true, result: Array(#"{"exit_code":7,"status":"succeeded"}"#.utf8) + Array("\nall good".utf8))
        _ = try await hub.stores.queue.complete(queue, id: UUID(uuidString: done)!, token: token, outcome: outcome, now: .now())

        XCTAssertTrue(try QueueFixture.eventually(timeout: 6) {
            try f.command(expiring)["state"] as? String == "expired" && f.command(done)["state"] as? String == "succeeded"
        })
        let recorded = try f.command(done)
        XCTAssertEqual(recorded["exit_code"] as? Int, 7)
        XCTAssertEqual(recorded["output"] as? String, "all good")
        let events = try await f.events(done)
        XCTAssertEqual(events.filter { $0 == "result" }.count, 1)
        let expiredEvents = try await f.events(expiring)
        XCTAssertEqual(expiredEvents.last, "expired")
    }
}

/// A claim that takes a lease in the hot queue but cannot write the record (PostgreSQL away)
/// gives the delivery back at once: when PostgreSQL returns, the next claim gets the command,
/// instead of the command sitting leased by nobody until its lease lapses.
final class QueueClaimFaultTests: XCTestCase {
    func testAClaimThatCannotBeRecordedGivesTheDeliveryBack() async throws {
        let hub = try await IdentityTestHub(.redisPostgres)
        defer { hub.stop() }
        let f = try QueueFixture(hub, name: "ClaimFault")
        try f.autoApprove(["uptime"])
        let session = try f.activeSession()
        // A long lease: without the give-back the command would be unclaimable for 10 minutes.
        let id = try XCTUnwrap(try f.propose(session, "uptime", extra: ["visibility_timeout_seconds": 600])["id"] as? String)
        let postgres = try XCTUnwrap(hub.postgres)
        // The test server runs without synchronous commits: flush before the crash, or it
        // loses the proposal itself.
        _ = try postgres.psql("CHECKPOINT")
        try postgres.kill()
        let refused = try hub.request("POST", "/api/v1/device/commands/claim", bearer: f.deviceToken, json: ["max": 1])
        XCTAssertEqual(refused.status, 503, refused.text)
        try postgres.startServer()
        var claimed: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(20)
        while claimed.isEmpty && Date() < deadline {
            let r = try hub.request("POST", "/api/v1/device/commands/claim", bearer: f.deviceToken, json: ["max": 1])
            if r.status == 200 { claimed = r.json?["commands"] as? [[String: Any]] ?? [] }
            if claimed.isEmpty { usleep(200_000) }
        }
        let record = try f.command(id)
        XCTAssertEqual(claimed.first?["id"] as? String, id, "claimable again as soon as PostgreSQL is back: \(record) \(refused.text)")
    }
}
