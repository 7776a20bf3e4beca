import Foundation
import HubTestSupport
import XCTest

/// The reservation behind the Redis and PostgreSQL test servers' ports: what keeps two test
/// processes from being handed the same port.
final class TestPortsTests: XCTestCase {
    func testAReservedPortIsHeldAgainstOtherProcessesUntilReleased() throws {
        let port = try TestPorts.reserve()
        let other = try TestPorts.reserve()
        defer { TestPorts.release(other) }
        XCTAssertNotEqual(port, other)
        XCTAssertLessThan(port, 32768, "below the default ephemeral range, which the kernel hands out")
        // Another process (flock(1), as a concurrent test run would) cannot take it...
        XCTAssertEqual(try flockStatus(port), 1, "the reservation must be visible to other processes")
        TestPorts.release(port)
        // ...until it is released.
        XCTAssertEqual(try flockStatus(port), 0)
    }

    /// `flock -n` on the port's lock file in a child process: 0 if it got the lock, 1 if not.
    private func flockStatus(_ port: Int) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        p.arguments = ["-n", "-E", "1", "/tmp/devicehub-test-ports/\(port).lock", "true"]
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
