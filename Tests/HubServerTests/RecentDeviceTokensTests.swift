import Foundation
import HubAuth
import XCTest
@testable import HubServer

/// A loop's one-second memory of validated device tokens: answers within its lifetime, never
/// after, and forgets a revoked device at once.
final class RecentDeviceTokensTests: XCTestCase {
    func testRemembersForOneSecondAndForgetsRevokedDevices() {
        let memory = RecentDeviceTokens()
        let a = DevicePrincipal(deviceID: UUID(), orgID: UUID()), b = DevicePrincipal(deviceID: UUID(), orgID: UUID())
        memory.remember("ta", a, now: 1_000)
        memory.remember("tb", b, now: 1_000)
        XCTAssertEqual(memory.principal(for: "ta", now: 1_000 + RecentDeviceTokens.lifetime - 1), a)
        XCTAssertNil(memory.principal(for: "ta", now: 1_000 + RecentDeviceTokens.lifetime), "expired entries never answer")
        XCTAssertNil(memory.principal(for: "ta", now: 1_000), "and are gone")
        XCTAssertNil(memory.principal(for: "tb-other", now: 1_000))
        memory.forget(b.deviceID)
        XCTAssertNil(memory.principal(for: "tb", now: 1_001), "a revoked device's tokens are dropped")
    }
}
