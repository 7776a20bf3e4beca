import Foundation
import HubAuth
import XCTest
@testable import HubServer

/// A loop's one-second memory of lookups (here: validated device tokens): answers within its
/// lifetime, never after, and forgets a revoked device at once.
final class RecentLookupsTests: XCTestCase {
    func testRemembersForOneSecondAndForgetsRevokedDevices() {
        let memory = RecentLookups<String, DevicePrincipal>()
        let a = DevicePrincipal(deviceID: UUID(), orgID: UUID()), b = DevicePrincipal(deviceID: UUID(), orgID: UUID())
        memory.remember("ta", a, now: 1_000)
        memory.remember("tb", b, now: 1_000)
        XCTAssertEqual(memory.value(for: "ta", now: 1_000 + memory.lifetime - 1), a)
        XCTAssertNil(memory.value(for: "ta", now: 1_000 + memory.lifetime), "expired entries never answer")
        XCTAssertNil(memory.value(for: "ta", now: 1_000), "and are gone")
        XCTAssertNil(memory.value(for: "tb-other", now: 1_000))
        memory.forget { $1.deviceID == b.deviceID }
        XCTAssertNil(memory.value(for: "tb", now: 1_001), "a revoked device's tokens are dropped")
    }
}
