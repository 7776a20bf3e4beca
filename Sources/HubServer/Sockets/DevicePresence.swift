import Foundation
import HubStore

/// Online/offline per device, in the key/value store so that every node sees it: a device
/// socket sets `presence:<device>` to its node's id with a TTL when it opens and on every
/// heartbeat, and deletes it when it closes. A node that dies stops refreshing, so its devices
/// go offline by themselves within the TTL (`--presence-ttl`).
///
/// The value names the node that holds the socket: wake-ups, a newer connection's `replace`
/// and revocations for the device go to that node's channel only (`DeviceRouter`).
public struct DevicePresence: Sendable {
    let keyValue: @Sendable () -> (any KeyValueStore)?
    /// How long a presence lasts without a heartbeat: a bit over two heartbeat intervals.
    public let ttl: Duration
    /// The node holding the socket: the value of the presence key.
    public let nodeID: String

    public init(ttl: Duration = .seconds(90), nodeID: String = "", keyValue: @escaping @Sendable () -> (any KeyValueStore)?) {
        self.ttl = ttl
        self.nodeID = nodeID
        self.keyValue = keyValue
    }

    static func key(_ deviceID: UUID) -> String { "presence:" + deviceID.lowercasedString }

    private var value: [UInt8] { nodeID.isEmpty ? [1] : Array(nodeID.utf8) }

    public func markOnline(_ deviceID: UUID) async throws(StoreError) {
        try await keyValue()?.set(Self.key(deviceID), value, ttl: ttl)
    }

    /// Marks the device online here and returns the node that held it before, when another
    /// did (its socket there is older and must close).
    public func takeOver(_ deviceID: UUID) async throws(StoreError) -> String? {
        let previous = try await holder(deviceID)
        try await markOnline(deviceID)
        return previous == nodeID ? nil : previous
    }

    /// What a heartbeat found.
    public enum Refresh: Equatable, Sendable {
        /// This node holds the device; its TTL starts again.
        case held
        /// Another node holds it: a newer socket of the device opened there and its `replace`
        /// message did not arrive. This socket is the older one.
        case heldElsewhere(String)
    }

    /// A heartbeat's refresh, one store operation in the usual case (`GETEX`): the TTL starts
    /// again when this node holds the presence; a lapsed one is written again.
    public func refresh(_ deviceID: UUID) async throws(StoreError) -> Refresh {
        guard let keyValue = keyValue() else { return .held }
        let current = try await keyValue.get(Self.key(deviceID), refreshingTTL: ttl)
        if let current, current != value, !current.isEmpty { return .heldElsewhere(String(decoding: current, as: UTF8.self)) }
        if current == nil { try await markOnline(deviceID) }
        return .held
    }

    /// Deletes the presence if this node still holds it; true when it did. A device that
    /// already connected through another node keeps that node's presence. (Read then delete:
    /// a takeover landing between the two is lost until the new socket's next heartbeat.)
    @discardableResult
    public func markOffline(_ deviceID: UUID) async throws(StoreError) -> Bool {
        guard let keyValue = keyValue() else { return false }
        guard try await keyValue.get(Self.key(deviceID)) == value else { return false }
        return try await keyValue.delete([Self.key(deviceID)]) > 0
    }

    public func isOnline(_ deviceID: UUID) async throws(StoreError) -> Bool {
        try await keyValue()?.get(Self.key(deviceID)) != nil
    }

    /// The node that holds the device's socket, if any.
    public func holder(_ deviceID: UUID) async throws(StoreError) -> String? {
        guard let bytes = try await keyValue()?.get(Self.key(deviceID)), !bytes.isEmpty, bytes != [1] else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
