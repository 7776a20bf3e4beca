import Foundation
import HubServer
import Logging
import HubIO
import XCTest

/// Services start in order, stop in reverse, and a failed start rolls back what it started.
final class ServiceGroupTests: XCTestCase {
    final class Journal: @unchecked Sendable {
        // @unchecked: guarded by the lock.
        private let lock = NSLock()
        private var entries: [String] = []
        func add(_ e: String) { lock.withLock { entries.append(e) } }
        var all: [String] { lock.withLock { entries } }
    }

    final class Recorder: HubService, @unchecked Sendable {
        // @unchecked: immutable after init.
        let name: String
        let journal: Journal
        let fails: Bool
        let hangs: Bool
        init(_ name: String, _ journal: Journal, fails: Bool = false, hangs: Bool = false) {
            self.name = name; self.journal = journal; self.fails = fails; self.hangs = hangs
        }
        struct Boom: Error {}
        func start() async throws {
            if fails { journal.add("fail \(name)"); throw Boom() }
            journal.add("start \(name)")
        }
        func stop() async {
            if hangs { try? await Task.sleep(for: .seconds(30)) }
            journal.add("stop \(name)")
        }
    }

    func testStartsInOrderAndStopsInReverse() async throws {
        let journal = Journal()
        let group = ServiceGroup(logger: Logger(label: "test"))
        for n in ["stores", "jwks", "sweeper"] { group.add(Recorder(n, journal)) }
        try await group.startAll()
        await group.stopAll()
        XCTAssertEqual(journal.all, ["start stores", "start jwks", "start sweeper", "stop sweeper", "stop jwks", "stop stores"])
        await group.stopAll()
        XCTAssertEqual(journal.all.count, 6, "a second stop stops nothing twice")
    }

    func testAFailedStartStopsWhatStartedBeforeIt() async throws {
        let journal = Journal()
        let group = ServiceGroup(logger: Logger(label: "test"))
        group.add(Recorder("stores", journal))
        group.add(Recorder("jwks", journal))
        group.add(Recorder("broken", journal, fails: true))
        group.add(Recorder("never", journal))
        do {
            try await group.startAll()
            XCTFail("start should fail")
        } catch {}
        XCTAssertEqual(journal.all, ["start stores", "start jwks", "fail broken", "stop jwks", "stop stores"])
    }

    func testAStuckStopDoesNotHoldUpShutdown() async throws {
        let journal = Journal()
        let group = ServiceGroup(logger: Logger(label: "test"))
        group.add(Recorder("stores", journal))
        group.add(Recorder("stuck", journal, hangs: true))
        try await group.startAll()
        let started = ContinuousClock.now
        await group.stopAll(timeout: .milliseconds(200))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
        XCTAssertEqual(journal.all.last, "stop stores", "the services before the stuck one still stop")
    }

    func testPeriodicServiceRunsOnItsLoopUntilStopped() async throws {
        let (server, _) = try startTestServer()
        defer { server.drain(gracePeriod: 1) }
        let loop = server.loops[1]
        let runs = Journal()
        let service = PeriodicService(name: "tick", every: .milliseconds(20), on: loop, runAtStart: true, logger: Logger(label: "t")) {
            runs.add(EventLoop.current === loop ? "on-loop" : "off-loop")
        }
        try await service.start()
        try await Task.sleep(for: .milliseconds(150))
        await service.stop()
        let count = runs.all.count
        XCTAssertGreaterThanOrEqual(count, 3)
        XCTAssertEqual(Set(runs.all), ["on-loop"])
        try await Task.sleep(for: .milliseconds(100))
        XCTAssertEqual(runs.all.count, count, "no run after stop")
    }
}
