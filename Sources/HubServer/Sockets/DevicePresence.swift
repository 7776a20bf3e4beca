import Foundation
import HubStore

/// Online/offline per device, in the key/value store so that every node sees it: a device
/// socket sets `presence:<device>` with a TTL when it opens and on every heartbeat, and deletes
/// it when it closes. A node that dies stops refreshing, so its devices go offline by
/// themselves within the TTL.
///
/// This is the minimal form the device list needs; the rooms layer adds `device.status` events
/// 
public struct DevicePresence: Sendable {
    let keyValue: @Sendable () -> (any KeyValueStore)?
    /// How long a presence lasts without a heartbeat: a bit over two heartbeat intervals.
    public let ttl: Duration
    /// The node holding the socket: the value of the presence key, so that wake-ups for the
    /// device go to that node only.
    public let nodeID: String

    public init(ttl: Duration = .seconds(90), nodeID: String = "", keyValue: @escaping @Sendable () -> (any KeyValueStore)?) {
        self.ttl = ttl
        self.nodeID = nodeID
        self.keyValue = keyValue
    }

    static func key(_ deviceID: UUID) -> String { "presence:" + deviceID.lowercasedString }

    public func markOnline(_ deviceID: UUID) async throws(StoreError) {
        try await keyValue()?.set(Self.key(deviceID), nodeID.isEmpty ? [1] : Array(nodeID.utf8), ttl: ttl)
    }

    public func markOffline(_ deviceID: UUID) async throws(StoreError) {
        _ = try await keyValue()?.delete([Self.key(deviceID)])
    }

    public func isOnline(_ deviceID: UUID) async throws(StoreError) -> Bool {
        try await keyValue()?.get(Self.key(deviceID)) != nil
    }
}
