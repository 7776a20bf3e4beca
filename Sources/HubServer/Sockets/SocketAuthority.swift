import Foundation
import HubIO

/// What the WebSocket endpoints need from the identity layer, so that the socket shells stay
/// free of credential parsing and store access.
public protocol SocketAuthority: Sendable {
    /// Verifies a customer JWT and loads the user's memberships; throws a `Problem` (401) when
    /// the token is not acceptable. Runs on `loop` (the verified-token cache is per loop).
    func verifyUser(token: String, on loop: EventLoop) async throws -> UserIdentity
    /// Whether the user may watch the room: its org (or the org of its device or session) is
    /// one of the user's. A room that does not exist is simply not visible.
    func userCanSee(room kind: RoomName.Kind, id: UUID, user: UserIdentity) async throws -> Bool
    /// Whether a device token still authenticates its device (not revoked, device not
    /// disabled); also slides the token's TTL. Nil when the store could not answer.
    func deviceTokenIsValid(_ token: String, deviceID: UUID) async -> Bool?
}
