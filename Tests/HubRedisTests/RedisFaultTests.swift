import Foundation
import HubTestSupport
import XCTest
import HubIO
import HubTelemetry
@testable import HubRedis

/// Faults against a Redis this test owns (it kills it): SIGKILL mid-stream and restart on the
/// same port, and a server stalled by `DEBUG SLEEP`. Always a private server, even when
/// `DEVICEHUB_TEST_REDIS_URL` is set, because the test must be able to kill it.
final class RedisFaultTests: XCTestCase {
    nonisolated(unsafe) static var server: RedisTestServer?
    nonisolated(unsafe) static var setupError: Error?

    override class func setUp() {
        super.setUp()
        do { server = try RedisTestServer.startPrivate() } catch { setupError = error }
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    private var testLoop: TestLoop!
    private var server: RedisTestServer!

    /// Every test starts here. Not `setUp`: an error thrown there is also logged by XCTest as a
    /// skip, and a missing Redis must read as the failure it is.
    private func start() async throws {
        if let error = Self.setupError { throw error }
        server = try XCTUnwrap(Self.server)
        testLoop = try TestLoop()
    }

    override func tearDown() async throws {
        testLoop?.stop()
    }

    /// A command that hits the stalled server times out at 200 ms (+ at most one sweep), exactly
    /// once; its late reply is dropped and the next command gets its own reply.
    func testTimeoutWithDebugSleep() async throws {
        try await start()
        let client = try await RedisClient.connected(to: server, loop: testLoop.loop)
        defer { client.close() }
        try await client.set("fault:k", "after-sleep")
        let calls = Locked<[(Result<RedisValue, RedisError>, Duration)]>([])
        let started = ContinuousClock.now
        client.send(["DEBUG", "SLEEP", "1"], timeout: .milliseconds(200)) { result in
            calls.withLock { $0.append((result, ContinuousClock.now - started)) }
        }
        // Queued behind the sleep on the same connection, with a timeout long enough to survive it.
        let next = try await client.send(["GET", "fault:k"], timeout: .seconds(5))
        XCTAssertEqual(next.text, "after-sleep", "the late DEBUG reply went to nobody; GET got its own reply")
        try await Task.sleep(for: .milliseconds(300))  // any second completion would have fired by now
        let recorded = calls.current
        XCTAssertEqual(recorded.count, 1, "completion fires exactly once")
        guard let (result, elapsed) = recorded.first else { return }
        guard case .failure(.timeout) = result else { return XCTFail("expected .timeout, got \(result)") }
        print("DEBUG SLEEP 1 with a 200 ms timeout: .timeout after \(elapsed)")
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(195))
        XCTAssertLessThanOrEqual(elapsed, .milliseconds(200 + 50 + 50), "timeout + one 50 ms sweep + scheduling slack")
        XCTAssertTrue(client.isConnected, "a timeout alone does not drop the connection")
    }

    /// SIGKILL while commands stream, restart on the same port: every command is answered exactly
    /// once and never later than timeout + one sweep, `isConnected` goes false then true, the
    /// client and the subscriber come back by themselves, and the subscription is restored.
    func testKillAndRestartMidStream() async throws {
        try await start()
        let registry = MetricsRegistry(loops: 1)
        var configuration = server.configuration
        configuration.name = "fault"
        configuration.commandTimeout = .milliseconds(500)
        let client = RedisClient(configuration: configuration, loop: testLoop.loop, registry: registry)
        let transitions = Locked<[Bool]>([])
        client.onConnectionChange { up in transitions.withLock { $0.append(up) } }
        client.start()
        defer { client.close() }
        let connected = await client.waitUntilConnected(timeout: .seconds(5))
        XCTAssertTrue(connected)

        let received = Locked<[RedisMessage]>([])
        let subscriber = RedisSubscriber(configuration: server.configuration, loop: testLoop.loop, registry: registry) { m in
            received.withLock { $0.append(m) }
        }
        subscriber.start()
        defer { subscriber.close() }
        let subUp = await waitUntil(timeout: 5) { subscriber.isConnected }
        XCTAssertTrue(subUp)
        try await subscriber.subscribe(["fault:events"])

        // The stream: one INCR every 2 ms from the loop, each recording when it was answered.
        let stream = CommandStream(client: client, loop: testLoop.loop, interval: 2_000_000)
        stream.start()
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertTrue(client.isConnected)
        let clientSeries = "devicehub_redis_reconnects_total{client=\"fault\"}"
        let subscriberSeries = "devicehub_redis_reconnects_total{client=\"redis-pubsub\"}"
        let clientBefore = try XCTUnwrap(MetricsText.value(registry.render(), clientSeries), registry.render())
        let subscriberBefore = try XCTUnwrap(MetricsText.value(registry.render(), subscriberSeries), registry.render())

        server.kill()
        let killedAt = ContinuousClock.now
        let noticed = await waitUntil(timeout: 2) { !client.isConnected && !subscriber.isConnected }
        XCTAssertTrue(noticed, "isConnected must go false after the kill")
        print("loss noticed after \(ContinuousClock.now - killedAt)")
        try await Task.sleep(for: .milliseconds(500))  // down for a while: sends fail fast meanwhile
        try server.restart()
        let restartedAt = ContinuousClock.now
        let back = await waitUntil(timeout: 5) { client.isConnected && subscriber.isConnected }
        XCTAssertTrue(back, "both reconnect by themselves")
        print("reconnected \(ContinuousClock.now - restartedAt) after the restart")
        let resubscribed = await waitUntil(timeout: 5) { await subscriber.activeSubscriptions().channels == ["fault:events"] }
        XCTAssertTrue(resubscribed, "the subscriber resubscribes after the reconnect")
        try await Task.sleep(for: .milliseconds(200))
        let outcome = await stream.stop()

        // Exactly once, and never late.
        XCTAssertEqual(outcome.sent, outcome.completed, "every command answered")
        XCTAssertEqual(outcome.duplicates, 0, "no command answered twice")
        let bound: UInt64 = 500_000_000 + 50_000_000 + 50_000_000  // timeout + one sweep + slack
        XCTAssertLessThanOrEqual(outcome.maxLatency, bound, "slowest answer \(outcome.maxLatency / 1_000_000) ms")
        XCTAssertGreaterThan(outcome.counts["ok", default: 0], 100)
        XCTAssertGreaterThan(outcome.counts["notConnected", default: 0], 10, "sends fail fast while down")
        XCTAssertEqual(outcome.counts["other", default: 0], 0, "\(outcome.counts)")
        print("stream: \(outcome.counts), slowest answer \(Double(outcome.maxLatency) / 1e6) ms, slowest failure \(Double(outcome.maxFailureLatency) / 1e6) ms")
        XCTAssertEqual(transitions.current.prefix(3), [true, false, true])

        // After the restart the data is gone (no persistence), the connection is fine.
        let n = try await client.incr("fault:after")
        XCTAssertEqual(n, 1)
        let delivered = try await client.publish("fault:events", "after restart")
        XCTAssertEqual(delivered, 1)
        let got = await waitUntil(timeout: 5) { received.current.last?.payload == Array("after restart".utf8) }
        XCTAssertTrue(got)
        let metrics = registry.render()
        // One loss, one reconnect each: counted, and counted once.
        XCTAssertEqual(MetricsText.value(metrics, clientSeries), clientBefore + 1, metrics)
        XCTAssertEqual(MetricsText.value(metrics, subscriberSeries), subscriberBefore + 1, metrics)
    }

    /// A frozen server (SIGSTOP): no FIN, no RST, just silence. Commands time out within
    /// timeout + one sweep; the stalled connection is dropped; reconnect attempts are accepted by
    /// the kernel but their handshake PING times out, so `isConnected` stays false until the
    /// server answers again (SIGCONT), after which the client recovers by itself.
    func testFrozenServerTimesOutAndRecovers() async throws {
        try await start()
        var configuration = server.configuration
        configuration.name = "frozen"
        configuration.commandTimeout = .milliseconds(200)
        configuration.stallTimeout = .milliseconds(400)
        configuration.connectTimeout = .milliseconds(500)
        let client = RedisClient(configuration: configuration, loop: testLoop.loop)
        let transitions = Locked<[Bool]>([])
        client.onConnectionChange { up in transitions.withLock { $0.append(up) } }
        client.start()
        defer { client.close() }
        let connected = await client.waitUntilConnected(timeout: .seconds(5))
        XCTAssertTrue(connected)

        let stream = CommandStream(client: client, loop: testLoop.loop, interval: 2_000_000)
        stream.start()
        try await Task.sleep(for: .milliseconds(200))
        server.freeze()
        let frozenAt = ContinuousClock.now
        let noticed = await waitUntil(timeout: 3) { !client.isConnected }
        XCTAssertTrue(noticed, "a stalled connection must be dropped")
        print("frozen server: connection dropped after \(ContinuousClock.now - frozenAt)")
        try await Task.sleep(for: .milliseconds(800))
        XCTAssertFalse(client.isConnected, "the kernel accepts the TCP connection, but PING is not answered")
        server.thaw()
        let back = await waitUntil(timeout: 5) { client.isConnected }
        XCTAssertTrue(back)
        try await Task.sleep(for: .milliseconds(200))
        let outcome = await stream.stop()

        XCTAssertEqual(outcome.sent, outcome.completed, "every command answered")
        XCTAssertEqual(outcome.duplicates, 0, "no command answered twice")
        let bound: UInt64 = 200_000_000 + 50_000_000 + 50_000_000  // timeout + one sweep + slack
        XCTAssertLessThanOrEqual(outcome.maxLatency, bound, "slowest answer \(outcome.maxLatency / 1_000_000) ms")
        XCTAssertGreaterThan(outcome.counts["timeout", default: 0], 10, "\(outcome.counts)")
        XCTAssertGreaterThan(outcome.counts["ok", default: 0], 50, "\(outcome.counts)")
        XCTAssertEqual(outcome.counts["other", default: 0], 0, "\(outcome.counts)")
        print("frozen stream: \(outcome.counts), slowest answer \(Double(outcome.maxLatency) / 1e6) ms")
        XCTAssertEqual(transitions.current.first, true)
        XCTAssertEqual(transitions.current.last, true)
        XCTAssertTrue(transitions.current.contains(false))
        try await client.ping()
    }

    /// No server at all: attempts back off (not a busy loop) and sends fail fast.
    func testUnreachableServerFailsFastAndBacksOff() async throws {
        try await start()
        // Reserved, so no other test process starts a server there while this one counts.
        let nowhere = try TestPorts.reserve()
        defer { TestPorts.release(nowhere) }
        var configuration = RedisConfiguration(host: "127.0.0.1", port: nowhere)
        configuration.name = "nowhere"
        let registry = MetricsRegistry(loops: 1)
        let client = RedisClient(configuration: configuration, loop: testLoop.loop, registry: registry)
        let series = "devicehub_redis_connect_failures_total{client=\"nowhere\"}"
        let before = try XCTUnwrap(MetricsText.value(registry.render(), series), "registered with the client")
        client.start()
        defer { client.close() }
        try await Task.sleep(for: .seconds(1))
        let started = ContinuousClock.now
        do {
            _ = try await client.send(["PING"])
            XCTFail("nothing listens there")
        } catch {
            XCTAssertEqual(error, .notConnected)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(50))
        // 50, 100, 200, 400 ms steps (jittered down by up to half) fit 4 to 8 attempts in 1 s.
        let attempts = Int((MetricsText.value(registry.render(), series) ?? -1) - before)
        XCTAssertTrue((3...9).contains(attempts), "attempts in 1 s: \(attempts)")
    }
}

/// Sends one `INCR` per `interval` from the loop and records each answer's latency and kind.
final class CommandStream: @unchecked Sendable {
    struct Outcome: Sendable {
        var sent = 0
        var completed = 0
        var duplicates = 0
        var maxLatency: UInt64 = 0
        var maxFailureLatency: UInt64 = 0
        var counts: [String: Int] = [:]
    }

    private let client: RedisClient
    private let loop: EventLoop
    private let interval: UInt64
    private let state = Locked(Outcome())
    private let running = Locked(true)
    private var answered = Set<Int>()

    init(client: RedisClient, loop: EventLoop, interval: UInt64) {
        self.client = client
        self.loop = loop
        self.interval = interval
    }

    func start() { loop.execute { self.tick() } }

    private func tick() {
        guard running.current else { return }
        let id = state.withLock { s -> Int in s.sent += 1; return s.sent }
        let sentAt = monotonicNanoseconds()
        client.send(["INCR", "fault:stream"]) { result in
            let latency = monotonicNanoseconds() - sentAt
            self.state.withLock { s in
                if self.answered.insert(id).inserted { s.completed += 1 } else { s.duplicates += 1 }
                s.maxLatency = max(s.maxLatency, latency)
                let kind: String
                switch result {
                case .success: kind = "ok"
                case .failure(.notConnected): kind = "notConnected"
                case .failure(.connectionLost): kind = "connectionLost"
                case .failure(.timeout): kind = "timeout"
                case .failure: kind = "other"
                }
                if kind != "ok" { s.maxFailureLatency = max(s.maxFailureLatency, latency) }
                s.counts[kind, default: 0] += 1
            }
        }
        loop.schedule(after: interval) { self.tick() }
    }

    /// Stops sending and waits (bounded) for the last answers.
    func stop() async -> Outcome {
        running.withLock { $0 = false }
        _ = await waitUntil(timeout: 2) { self.state.current.completed + self.state.current.duplicates >= self.state.current.sent }
        return state.current
    }
}
