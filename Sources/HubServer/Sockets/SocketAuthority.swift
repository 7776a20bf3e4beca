import Foundation
import HubAuth
import HubIO

/// What the WebSocket endpoints need from the identity layer, so that the socket shells stay
/// free of credential parsing and store access.
public protocol SocketAuthority: Sendable {
    /// Verifies a customer JWT and loads the user's memberships; throws a `Problem` (401, or
    /// 429 when the client IP's failure budget is used up) when the token is not acceptable,
    /// a `StoreError` when the memberships cannot be read. Runs on `loop` (the verified-token
    /// cache is per loop); failures count against `ip` as on HTTP.
    func verifyUser(token: String, on loop: EventLoop, ip: String) async throws -> UserPrincipal
    /// Whether the user may watch the room: its org (or the org of its device or session) is
    /// one of the user's. A room that does not exist is simply not visible.
    func userCanSee(room kind: RoomName.Kind, id: UUID, user: UserPrincipal) async throws -> Bool
    /// Records that the device was seen now (`last_seen_at`); best effort.
    func deviceSeen(_ deviceID: UUID) async
    /// Whether a device token still authenticates its device (not revoked, device not
    /// disabled); also slides the token's TTL. Nil when the store could not answer.
    func deviceTokenIsValid(_ token: String, deviceID: UUID) async -> Bool?
}
