import Foundation
import HubServer
import HubTestSupport
import XCTest

/// Start-up, configuration, draining and resource exhaustion, partly through the real binary.
final class LifecycleTests: XCTestCase {
    func testDrainFinishesInFlightRequestThenStops() throws {
        let (server, _) = try startTestServer { app in
            app.route(.get, "/slow") { ctx, responder in
                ctx.loop.schedule(after: 400_000_000) { responder.send(.text("finished")) }
            }
        }
        let inflight = try TestClient(port: server.httpPort)
        let idle = try TestClient(port: server.httpPort)
        XCTAssertEqual(try idle.request("GET", "/healthz").status, 200)
        try inflight.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(50_000)
        let drained = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var clean = false }
        let result = Box()
        Thread.detachNewThread {
            result.clean = server.drain(gracePeriod: 5)
            drained.signal()
        }
        // The idle keep-alive connection is closed promptly.
        XCTAssertTrue(idle.waitForClose())
        // The in-flight request completes, marked as the last on its connection.
        let r = try inflight.readResponse()
        XCTAssertEqual(r.text, "finished")
        XCTAssertEqual(r.header("Connection"), "close")
        XCTAssertTrue(inflight.waitForClose())
        XCTAssertEqual(drained.wait(timeout: .now() + 6), .success)
        XCTAssertTrue(result.clean)
        // New connections are refused once draining began.
        XCTAssertThrowsError(try TestClient(port: server.httpPort))
    }

    func testReadyzIs503WhileDraining() throws {
        // One loop, whose thread the /hold handler blocks until the drain has begun. A
        // connection stops reading new requests once the drain reaches it, so /readyz must be
        // parsed in that window: it is pipelined behind /hold in one write, and the loop parses
        // it only when /hold's handler returns, with the draining flag already set.
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let (server, _) = try startTestServer({ $0.loops = 1 }) { app in
            app.route(.get, "/hold") { _, responder in
                entered.signal()
                _ = release.wait(timeout: .now() + 5)
                responder.send(.text("held"))
            }
        }
        let c = try TestClient(port: server.httpPort)
        try c.send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(entered.wait(timeout: .now() + 5), .success)
        let drained = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            server.drain(gracePeriod: 5)
            drained.signal()
        }
        let deadline = Date().addingTimeInterval(5)
        while !server.application.draining.load(ordering: .relaxed) && Date() < deadline { usleep(1_000) }
        XCTAssertTrue(server.application.draining.load(ordering: .relaxed))
        release.signal()

        XCTAssertEqual(try c.readResponse().text, "held")
        let ready = try c.readResponse()
        XCTAssertEqual(ready.status, 503, ready.text)
        XCTAssertEqual(ready.json?["draining"] as? Bool, true, ready.text)
        XCTAssertEqual(ready.json?["status"] as? String, "not_ready", ready.text)
        XCTAssertEqual(drained.wait(timeout: .now() + 6), .success)
    }

    func testSIGTERMDrainsAndExitsZero() throws {
        let hub = try HubProcess(arguments: ["--port", "0", "--host", "127.0.0.1", "--loops", "2", "--shutdown-grace-period", "3"])
        let port = try hub.waitUntilListening()
        let c = try TestClient(port: port)
        XCTAssertEqual(try c.request("GET", "/healthz").status, 200)
        hub.signal(SIGTERM)
        XCTAssertEqual(hub.waitForExit(timeout: 5), 0, hub.log)
        XCTAssertTrue(hub.log.contains("\"msg\":\"draining\""), hub.log)
        XCTAssertTrue(hub.log.contains("\"msg\":\"stopped\""), hub.log)
    }

    func testEnvironmentVariablesConfigureTheServer() throws {
        let hub = try HubProcess(arguments: ["--host", "127.0.0.1"], environment: ["DEVICEHUB_PORT": "0", "DEVICEHUB_LOOPS": "1", "DEVICEHUB_NO_ACCESS_LOG": "1", "DEVICEHUB_ACCESS_LOG": "false"])
        let port = try hub.waitUntilListening()
        XCTAssertGreaterThan(port, 0)
        let c = try TestClient(port: port)
        XCTAssertEqual(try c.request("GET", "/healthz").status, 200)
        usleep(100_000)
        XCTAssertFalse(hub.log.contains("\"logger\":\"access\""), "DEVICEHUB_ACCESS_LOG=false must turn the access log off")
        hub.signal(SIGTERM)
        XCTAssertEqual(hub.waitForExit(timeout: 5), 0)
    }

    func testAccessLogLineCarriesRequestFields() throws {
        let hub = try HubProcess(arguments: ["--host", "127.0.0.1", "--port", "0", "--loops", "1"])
        let port = try hub.waitUntilListening()
        let c = try TestClient(port: port)
        _ = try c.request("GET", "/healthz", headers: ["X-Request-ID": "trace-42"])
        usleep(200_000)
        let line = try XCTUnwrap(hub.log.split(separator: "\n").first { $0.contains("trace-42") })
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(obj["logger"] as? String, "access")
        XCTAssertEqual(obj["status"] as? Int, 200)
        XCTAssertEqual(obj["path"] as? String, "/healthz")
        XCTAssertEqual(obj["bytes"] as? Int ?? 0 > 0, true)
        XCTAssertNotNil(obj["duration_ms"])
        XCTAssertNotNil(obj["ts"])
    }

    func testInvalidConfigurationFailsWithAClearMessage() throws {
        for (args, needle) in [(["--port", "70000"], "--port must be 0...65535"),
                               (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], "cannot read /nonexistent.pem"),
                               (["--tls-cert", "/etc/hostname"], "--tls-cert and --tls-key must be given together"),
                               (["--log-level", "loud"], "--log-level must be one of"),
                               (["--redis-url", "rediss://127.0.0.1:1", "--postgres-url", "postgres://127.0.0.1:1/x", "--hash-key", testHashKey],
                                "--redis-url must start with redis:// (one Redis) or redis+cluster://"),
                               (["--redis-url", "redis+cluster://127.0.0.1:1/2", "--postgres-url", "postgres://127.0.0.1:1/x", "--hash-key", testHashKey],
                                "a Redis Cluster has only database 0")] {
            let hub = try HubProcess(arguments: args)
            XCTAssertEqual(hub.waitForExit(timeout: 10).map { $0 != 0 }, true, "\(args) must fail")
            XCTAssertTrue(hub.log.contains(needle), "\(args): expected \(needle) in \(hub.log)")
        }
    }

    func testHelpExplainsOptionsAndEnvironment() throws {
        let p = Process()
        p.executableURL = devicehubBinary()
        p.arguments = ["--help"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        p.waitUntilExit()
        let help = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(help.contains("--keep-alive-timeout"))
        XCTAssertTrue(help.contains("DEVICEHUB_PORT"))
    }

    /// With the descriptor limit at 64, a burst of 150 connections exhausts it. The server must
    /// keep serving once they go away, and must not spin on the listener meanwhile.
    func testEMFILEIsSurvivedWithoutBusyLooping() throws {
        let hub = try HubProcess(arguments: ["--host", "127.0.0.1", "--port", "0", "--loops", "1", "--no-access-log"], shellPrefix: "ulimit -n 64")
        let port = try hub.waitUntilListening()
        var clients: [TestClient] = []
        for _ in 0..<150 {
            if let c = try? TestClient(port: port, timeout: 1) { clients.append(c) }
        }
        let cpuBefore = processCPUSeconds(hub.process.processIdentifier)
        sleep(1)
        let cpuAfter = processCPUSeconds(hub.process.processIdentifier)
        XCTAssertLessThan(cpuAfter - cpuBefore, 0.5, "the server must not busy-loop on EMFILE")
        clients.removeAll()
        usleep(300_000)
        let c = try TestClient(port: port)
        XCTAssertEqual(try c.request("GET", "/healthz").status, 200)
        let metrics = try c.request("GET", "/metrics").text
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("devicehub_accept_errors_total ") }
        XCTAssertGreaterThan(Int(line?.split(separator: " ").last ?? "0") ?? 0, 0, "accept errors must be counted")
        XCTAssertTrue(hub.log.contains("accept failed"), "EMFILE must be logged")
    }

    private func processCPUSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return 0 }
        let fields = stat.split(separator: ")").last!.split(separator: " ")
        // utime and stime are fields 14 and 15 of stat; after the ")" they are at 11 and 12.
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// The hub with Redis and PostgreSQL configured but down: it starts, says 503, and recovers.
final class DependencyReadinessTests: XCTestCase {
    func testHubStartsWithDependenciesDownAndReportsThemUntilTheyReturn() throws {
        // Reserved (nothing listens yet; Redis is started on its port later in the test).
        let redisPort = try TestPorts.reserve(), pgPort = try TestPorts.reserve()
        defer { TestPorts.release(redisPort); TestPorts.release(pgPort) }
        let hub = try HubProcess(arguments: ["--host", "127.0.0.1", "--port", "0", "--loops", "1",
                                             "--redis-url", "redis://127.0.0.1:\(redisPort)/0",
                                             "--postgres-url", "postgres://postgres@127.0.0.1:\(pgPort)/postgres?sslmode=disable&connect_timeout=1",
                                             "--hash-key", testHashKey])
        let port = try hub.waitUntilListening()
        let c = try TestClient(port: port)
        let down = try c.request("GET", "/readyz")
        XCTAssertEqual(down.status, 503)
        let checks = down.json?["checks"] as? [String: String]
        XCTAssertEqual(checks?["redis"], "down")
        XCTAssertEqual(checks?["postgres"], "down")
        // Requests that need no dependency are still served.
        XCTAssertEqual(try c.request("GET", "/healthz").status, 200)

        // Redis comes up: the hub connects by itself.
        let redis = Process()
        redis.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        redis.arguments = ["--port", "\(redisPort)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        redis.standardOutput = FileHandle.nullDevice
        try redis.run()
        defer { redis.terminate(); redis.waitUntilExit() }
        let deadline = Date().addingTimeInterval(10)
        var redisState: String?
        while Date() < deadline {
            redisState = (try c.request("GET", "/readyz").json?["checks"] as? [String: String])?["redis"]
            if redisState == "up" { break }
            usleep(100_000)
        }
        XCTAssertEqual(redisState, "up", "the hub must reconnect to Redis by itself")
        XCTAssertEqual(try c.request("GET", "/readyz").status, 503, "still 503 while PostgreSQL is down")
        hub.signal(SIGTERM)
        XCTAssertEqual(hub.waitForExit(timeout: 10), 0, hub.log)
    }

    func testEmbeddedStoreIsTheDefaultAndKeepsItsFile() throws {
        let dir = NSTemporaryDirectory() + "devicehub-embedded-\(UUID().uuidString)"
        let hub = try HubProcess(arguments: ["--host", "127.0.0.1", "--port", "0", "--loops", "1", "--data-dir", dir])
        let port = try hub.waitUntilListening()
        let ready = try TestClient(port: port).request("GET", "/readyz")
        XCTAssertEqual(ready.status, 200)
        XCTAssertEqual((ready.json?["checks"] as? [String: String])?["embedded_store"], "up")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/devicehub.sqlite"))
        hub.signal(SIGTERM)
        XCTAssertEqual(hub.waitForExit(timeout: 10), 0)
    }
}
