import Foundation
import HubServer
import HubStore
import HubTestSupport
import XCTest

/// The queue's races, through the hub: concurrent claimers, a cancel during claims, the reaper
/// and a result at the same instant, two nodes approving one command, and a wake-up that has to
/// cross nodes. Checked against the records afterwards.
final class QueueRaceTests: XCTestCase {
    func testConcurrentClaimersEmbedded() async throws { try await concurrentClaimers(.embedded) }
    func testConcurrentClaimersRedisPostgres() async throws { try await concurrentClaimers(.redisPostgres) }

    /// 8 claimers at once over 60 commands: every command delivered exactly once.
    private func concurrentClaimers(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()
        var proposed = Set<String>()
        for _ in 0..<60 { proposed.insert(try XCTUnwrap(try f.propose(session, "job")["id"] as? String)) }

        let lock = NSLock()
        var delivered: [String] = []
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            while let batch = try? f.claim(max: 3), !batch.isEmpty {
                lock.lock(); delivered += batch.compactMap { $0["id"] as? String }; lock.unlock()
            }
        }
        XCTAssertEqual(delivered.count, 60, "each command once")
        XCTAssertEqual(Set(delivered), proposed)
        let records = try await hub.stores.records.commands(sessionID: UUID(uuidString: session)!, states: nil, afterSeq: 0, limit: 100)
        XCTAssertEqual(records.filter { $0.state == .claimed && $0.attempts == 1 }.count, 60)
    }

    func testCancelDuringClaimsEmbedded() async throws { try await cancelDuringClaims(.embedded) }
    func testCancelDuringClaimsRedisPostgres() async throws { try await cancelDuringClaims(.redisPostgres) }

    /// Cancels race claims and results: a command ends canceled or succeeded, never both; a
    /// canceled command's result is 409 `canceled`; a 200 for either matches the record.
    private func cancelDuringClaims(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend)
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()
        var ids: [String] = []
        for _ in 0..<30 { ids.append(try XCTUnwrap(try f.propose(session, "job")["id"] as? String)) }

        let lock = NSLock()
        var canceledOK = Set<String>(), succeededOK = Set<String>(), resultConflicts: [String: String] = [:]
        DispatchQueue.concurrentPerform(iterations: 3) { worker in
            if worker == 0 {
                for id in ids {
                    if let r = try? hub.request("POST", "/api/v1/customer/commands/\(id)/cancel", bearer: f.op), r.status == 200 {
                        lock.lock(); canceledOK.insert(id); lock.unlock()
                    }
                }
                return
            }
            while let batch = try? f.claim(max: 2), !batch.isEmpty {
                for c in batch {
                    let id = c["id"] as! String
                    guard let r = try? hub.request("POST", "/api/v1/device/commands/\(id)/result", bearer: f.deviceToken,
                                                   json: ["lease_token": c["lease_token"]!, "status": "succeeded"]) else { continue }
                    lock.lock()
                    if r.status == 200 { succeededOK.insert(id) } else { resultConflicts[id] = r.json?["state"] as? String }
                    lock.unlock()
                }
            }
        }
        XCTAssertTrue(canceledOK.isDisjoint(with: succeededOK), "never both canceled and succeeded")
        for (id, state) in resultConflicts { XCTAssertEqual(state, "canceled", "\(id)") }
        for id in ids {
            let found = try await hub.stores.records.command(id: UUID(uuidString: id)!)
            let record = try XCTUnwrap(found)
            let events = try await f.events(id)
            if canceledOK.contains(id) {
                XCTAssertEqual(record.state, .canceled)
                XCTAssertFalse(events.contains("result"), "\(id): \(events)")
            } else {
                XCTAssertEqual(record.state, .succeeded, "\(id) was not canceled, so it ran")
                XCTAssertTrue(succeededOK.contains(id))
                XCTAssertEqual(events.filter { $0 == "result" }.count, 1)
            }
        }
        XCTAssertEqual(canceledOK.count + succeededOK.count, ids.count)
    }

    func testReaperAndResultAtOnceEmbedded() async throws { try await reaperAndResult(.embedded) }
    func testReaperAndResultAtOnceRedisPostgres() async throws { try await reaperAndResult(.redisPostgres) }

    /// Results sent right at the lease deadline while the reaper sweeps every 20 ms: each result
    /// is either accepted (and the command succeeded, nothing requeued after it) or refused with
    /// 409 (and the command went back in line, with no result recorded).
    private func reaperAndResult(_ backend: IdentityTestHub.Backend) async throws {
        let hub = try await IdentityTestHub(backend) { $0.reaperInterval = 0.05 }
        defer { hub.stop() }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()
        var accepted = 0, refused = 0
        for i in 0..<8 {
            let id = try XCTUnwrap(try f.propose(session, "job", extra: ["visibility_timeout_seconds": 1, "max_attempts": 5])["id"] as? String)
            var lease: [String: Any] = [:]
            XCTAssertTrue(try QueueFixture.eventually { lease = try f.claim().first { $0["id"] as? String == id } ?? [:]; return !lease.isEmpty })
            // Around the deadline: 0.9 ... 1.1 s after the claim.
            usleep(UInt32(900_000 + i * 30_000))
            let r = try hub.request("POST", "/api/v1/device/commands/\(id)/result", bearer: f.deviceToken,
                                    json: ["lease_token": lease["lease_token"]!, "status": "succeeded"])
            let found = try await hub.stores.records.command(id: UUID(uuidString: id)!)
            let record = try XCTUnwrap(found)
            let events = try await f.events(id)
            if r.status == 200 {
                accepted += 1
                XCTAssertEqual(record.state, .succeeded)
                XCTAssertEqual(events.filter { $0 == "result" }.count, 1)
                usleep(200_000)
                let after = try await f.events(id)
                XCTAssertEqual(after.last, "result", "nothing after the result: \(after)")
            } else {
                refused += 1
                XCTAssertEqual(r.status, 409)
                XCTAssertFalse(events.contains("result"), "\(events)")
                XCTAssertTrue([.queued, .claimed].contains(record.state), "the lapsed command is back in line: \(record.state)")
            }
            _ = try? hub.request("POST", "/api/v1/customer/commands/\(id)/cancel", bearer: f.op)
        }
        XCTAssertEqual(accepted + refused, 8)
        print("reaper/result race: \(accepted) accepted, \(refused) refused")
    }

    func testConcurrentApprovalsEmbedded() async throws {
        let hub = try await IdentityTestHub(.embedded)
        defer { hub.stop() }
        try concurrentApprovals(hub, ports: [hub.port, hub.port])
    }

    /// Two nodes of one hub (one Redis, one PostgreSQL) approving the same commands at once.
    func testConcurrentApprovalsOnTwoNodes() async throws {
        let hub = try await IdentityTestHub(.redisPostgres)
        defer { hub.stop() }
        let second = try await hub.secondNode(nodeID: "node-b")
        defer { second.drain(gracePeriod: 1) }
        try concurrentApprovals(hub, ports: [hub.port, second.httpPort])
    }

    /// Exactly one approval per command wins (200), the other gets 409 with state `queued`; the
    /// command is recorded approved once and delivered once.
    private func concurrentApprovals(_ hub: IdentityTestHub, ports: [Int]) throws {
        let f = try QueueFixture(hub)
        let approver2 = UUID()
        try hub.expect(201, "POST", "/api/v1/admin/orgs/\(f.org.uuidString)/members", bearer: IdentityTestHub.adminToken,
                       json: ["user_id": approver2.uuidString, "role": "approver"])
        let session = try f.activeSession()
        var ids: [String] = []
        for _ in 0..<10 { ids.append(try XCTUnwrap(try f.propose(session, "reboot")["id"] as? String)) }
        let approvers = [f.ap, IdentityTestHub.jwt(approver2)]
        for id in ids {
            var statuses = [Int](repeating: 0, count: 2), states = [String?](repeating: nil, count: 2)
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                let r = try? TestClient(port: ports[i]).request("POST", "/api/v1/customer/commands/\(id)/approve",
                                                                headers: ["Authorization": "Bearer \(approvers[i])"])
                lock.lock(); statuses[i] = r?.status ?? 0; states[i] = r?.json?["state"] as? String; lock.unlock()
            }
            XCTAssertEqual(statuses.sorted(), [200, 409], "\(id)")
            XCTAssertEqual(states, ["queued", "queued"])
        }
        var delivered: [String] = []
        while case let batch = try f.claim(max: 10), !batch.isEmpty { delivered += batch.compactMap { $0["id"] as? String } }
        XCTAssertEqual(delivered.sorted(), ids.sorted(), "each approved command delivered once")
    }

    /// The device's socket and long poll are on node B; proposals arrive on node A: B's
    /// `command.available` and long poll answer at once, through A's message to B's channel.
    func testWakeUpsCrossNodes() async throws {
        let hub = try await IdentityTestHub(.redisPostgres)
        defer { hub.stop() }
        let nodeB = try await hub.secondNode(nodeID: "node-b")
        defer { nodeB.drain(gracePeriod: 1) }
        let f = try QueueFixture(hub)
        try f.autoApprove(["job"])
        let session = try f.activeSession()

        let ws = try IdentityTestHub.Session(port: nodeB.httpPort, path: "/ws/device", steps: [["ready": true], ["recv": 1]],
                                             headers: ["Authorization": "Bearer \(f.deviceToken)"])
        try ws.waitUntilReady()
        usleep(300_000)
        _ = try f.propose(session, "job")
        let got = try ws.finish(timeout: 5)
        XCTAssertEqual(got.received.first?["type"] as? String, "command.available")

        // Drain it, then a long poll on B, woken by a proposal on A.
        _ = try TestClient(port: nodeB.httpPort).request("POST", "/api/v1/device/commands/claim",
                                                         headers: ["Authorization": "Bearer \(f.deviceToken)", "Content-Type": "application/json"],
                                                         body: #"{"max":10}"#)
        var polled: TestClient.Response?
        let started = Date()
        let poller = Thread {
            polled = try? TestClient(port: nodeB.httpPort).request("POST", "/api/v1/device/commands/claim",
                                                                   headers: ["Authorization": "Bearer \(f.deviceToken)", "Content-Type": "application/json"],
                                                                   body: #"{"max":1,"wait_seconds":10}"#)
        }
        poller.start()
        usleep(500_000)
        let id = try XCTUnwrap(try f.propose(session, "job")["id"] as? String)
        XCTAssertTrue(try QueueFixture.eventually(timeout: 9) { polled != nil })
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "woken across nodes, not at the deadline")
        XCTAssertEqual(((polled?.json?["commands"] as? [[String: Any]])?.first?["id"]) as? String, id)
    }
}
