import Foundation
import HubServer
import HubStore
import HubTestSupport
import XCTest

/// The hub builds the store interfaces over the configured backend, and an embedded hub keeps its
/// durable records across a restart: restarting an embedded hub loses no device, credential or
/// accepted command (docs/product.md §7).
final class DataStoresTests: XCTestCase {
    func testEmbeddedHubKeepsDevicesCredentialsAndCommandsAcrossARestart() async throws {
        let dir = NSTemporaryDirectory() + "devicehub-restart-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let org = Org(name: "Acme", slug: "acme-\(UUID().uuidString.prefix(8).lowercased())")
        let secretHash: [UInt8] = (0..<32).map { UInt8($0 * 7 & 0xff) }
        let device = Device(orgID: org.id, name: "pump 7", state: .active, secretHash: secretHash)
        let user = UUID()
        let session = DiagnosticSession(orgID: org.id, deviceID: device.id, requestedBy: user, reason: "vibration")
        let command = CommandRecord(orgID: org.id, sessionID: session.id, deviceID: device.id, kind: "read_log",
                                    state: .queued, needsApproval: false, proposedBy: user.uuidString,
                                    expiresAt: Date().addingTimeInterval(3600))

        do {
            let (server, _) = try startTestServer { $0.dataDirectory = dir }
            let stores = try XCTUnwrap(server.stores)
            XCTAssertTrue(stores.records is SQLiteRecordStore)
            XCTAssertTrue(stores.queue is EmbeddedLeaseQueue)
            try await stores.records.insertOrg(org)
            try await stores.records.insertDevice(device)
            try await stores.records.insertSession(session)
            _ = try await stores.records.insertCommand(command, event: CommandEvent(commandID: command.id, event: "queued", toState: .queued))
            // Hot state is in process: it does not survive, by design.
            try await stores.keyValue.set("token", [1, 2, 3], ttl: .seconds(60))
            XCTAssertTrue(server.drain(gracePeriod: 1))
        }

        let (server, _) = try startTestServer { $0.dataDirectory = dir }
        defer { server.drain(gracePeriod: 1) }
        let stores = try XCTUnwrap(server.stores)
        let reread = try await stores.records.device(id: device.id)
        XCTAssertEqual(reread?.state, .active)
        XCTAssertEqual(reread?.secretHash, secretHash, "the device's credential survives the restart")
        let slug = try await stores.records.org(id: org.id)?.slug
        XCTAssertEqual(slug, org.slug)
        let unfinished = try await stores.records.unfinishedCommands(afterSeq: 0, limit: 100)
        XCTAssertEqual(unfinished.map(\.id), [command.id], "the accepted command survives, ready to rebuild the queue from")
        let events = try await stores.records.commandEvents(commandID: command.id)
        XCTAssertEqual(events.map(\.event), ["queued"])
        let token = try await stores.keyValue.get("token")
        XCTAssertNil(token)
    }

    func testHubWithRedisAndPostgresUsesThemThroughTheSameInterfaces() async throws {
        let redis = try RedisTestServer.startPrivate()
        defer { redis.stop() }
        let postgres = try PostgresTestServer.start()
        defer { postgres.stop() }
        let (server, _) = try startTestServer {
            $0.redisURL = redis.url
            $0.hashKey = testHashKey
            $0.postgresURL = postgres.url
        }
        defer { server.drain(gracePeriod: 1) }
        let stores = try XCTUnwrap(server.stores)
        XCTAssertTrue(stores.records is PostgresRecordStore)
        XCTAssertTrue(stores.queue is RedisLeaseQueue)

        // Ready once Redis is connected and the migrations have run.
        let deadline = Date().addingTimeInterval(15)
        while !server.readiness.snapshot().allSatisfy(\.ready), Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertTrue(server.readiness.snapshot().allSatisfy(\.ready), "\(server.readiness.snapshot())")

        try await stores.keyValue.set("token", Array("device-42".utf8), ttl: .seconds(60))
        let token = try await stores.keyValue.get("token")
        XCTAssertEqual(token, Array("device-42".utf8))
        // redis-cli sees it under the hub's namespace: the store really is Redis.
        XCTAssertEqual(String(decoding: try redis.cli(["GET", "dh:kv:token"]), as: UTF8.self), "device-42\n")

        let org = Org(name: "Acme", slug: "acme")
        try await stores.records.insertOrg(org)
        XCTAssertEqual(try postgres.psql("SELECT name FROM devicehub.orgs WHERE slug = 'acme'"), "Acme")
    }

    /// A route that reads through the stores: with Redis killed it answers 503
    /// `dependency_unavailable` with `Retry-After` at once (no hang), with an oversized key 400
    /// `invalid_argument`, and after Redis returns 200 again, by itself.
    func testStoreFailuresBecomeProblemResponses() async throws {
        let redis = try RedisTestServer.startPrivate()
        defer { redis.stop() }
        let postgres = try PostgresTestServer.start()
        defer { postgres.stop() }
        final class Box: @unchecked Sendable { var stores: Stores? }
        let box = Box()
        let (server, _) = try startTestServer({
            $0.redisURL = redis.url
            $0.hashKey = testHashKey
            $0.postgresURL = postgres.url
        }) { app in
            app.route(.get, "/kv/:key") { ctx, responder in
                let key = ctx.params["key"] ?? ""
                let loop = ctx.loop
                Task {
                    do {
                        let value = try await box.stores!.keyValue.get(key)
                        loop.execute { responder.send(value.map { .text(String(decoding: $0, as: UTF8.self)) } ?? ctx.problem(404, "not_found")) }
                    } catch let error as StoreError {
                        loop.execute { responder.send(ctx.problem(error)) }
                    } catch {
                        loop.execute { responder.send(ctx.problem(500, "internal_error")) }
                    }
                }
            }
        }
        defer { server.drain(gracePeriod: 1) }
        box.stores = server.stores
        let deadline = Date().addingTimeInterval(15)
        while !server.readiness.snapshot().allSatisfy(\.ready), Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try await box.stores!.keyValue.set("greeting", Array("hello".utf8), ttl: nil)
        let port = server.httpPort

        XCTAssertEqual(try TestClient(port: port).request("GET", "/kv/greeting").text, "hello")
        let long = try TestClient(port: port).request("GET", "/kv/" + String(repeating: "k", count: StoreLimits.maxKeyBytes + 1))
        XCTAssertEqual(long.status, 400)
        XCTAssertEqual(long.json?["code"] as? String, "invalid_argument")

        redis.kill()
        let started = Date()
        let down = try TestClient(port: port).request("GET", "/kv/greeting")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "a request must fail fast while Redis is down")
        XCTAssertEqual(down.status, 503)
        XCTAssertEqual(down.json?["code"] as? String, "dependency_unavailable")
        XCTAssertEqual(down.header("Retry-After"), "1")
        XCTAssertEqual(down.header("Content-Type"), "application/problem+json")
        XCTAssertNotNil(down.json?["request_id"] as? String)
        XCTAssertFalse(down.text.contains("redis:"), "the backend's own message stays in the log: \(down.text)")

        try redis.launch()
        var back = 0
        let until = Date().addingTimeInterval(10)
        while back != 404, Date() < until {
            // The restarted Redis is empty: 404 is the answer of a working store.
            back = try TestClient(port: port).request("GET", "/kv/greeting").status
            if back != 404 { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertEqual(back, 404, "the hub must serve again once Redis is back")
    }
}
