import Foundation
import HubAuth
import HubCommands
import HubStore
import Logging

/// Wakes devices on whichever node holds them (`DeviceWakeups`): its socket gets
/// `command.available` or `command.cancel`, its long polls return at once.
///
/// This node is served directly. Other nodes are reached through their own channel
/// (`node:<id>`), only those that the key/value store names: the node holding the device's
/// socket (its presence) and the node where a long poll of it waits (`poll:<device>`). No
/// message goes to every node. Pub/sub is at most once: a lost wake-up costs the device its
/// next claim interval, never a command.
///
/// The same channel carries what a node asks of the node holding a device's socket: `replace`
/// (the device connected again elsewhere: close with 4509, leaving the presence alone) and
/// `revoke` (disabled or secret rotated: forget its tokens, close with 4503).
struct DeviceRouter: DeviceWakeups {
    let nodeID: String
    let connections: DeviceConnections
    let waiters: ClaimWaiters
    let keyValue: any KeyValueStore
    let pubSub: any PubSub
    /// False on the embedded store: one process, so every device is local.
    let distributed: Bool
    let logger: Logger
    /// Drops the device's tokens from this node's memories (a revocation).
    let forgetDevice: @Sendable (UUID) -> Void

    static let availableText = #"{"type":"command.available"}"#
    static func cancelText(_ commandID: UUID) -> String { #"{"type":"command.cancel","command_id":""# + commandID.lowercasedString + #""}"# }

    static func channel(_ nodeID: String) -> String { "node:" + nodeID }
    static func pollKey(_ deviceID: UUID) -> String { "poll:" + deviceID.lowercasedString }

    func commandAvailable(deviceID: UUID) async {
        deliver(NodeMessage(op: "available", device_id: deviceID.lowercasedString, command_id: nil))
        await forward(NodeMessage(op: "available", device_id: deviceID.lowercasedString, command_id: nil), deviceID: deviceID, includePolls: true)
    }

    func commandCanceled(deviceID: UUID, commandID: UUID) async {
        let message = NodeMessage(op: "cancel", device_id: deviceID.lowercasedString, command_id: commandID.lowercasedString)
        deliver(message)
        await forward(message, deviceID: deviceID, includePolls: false)
    }

    /// Performs a node message on this node.
    func deliver(_ message: NodeMessage) {
        guard let deviceID = UUID(uuidString: message.device_id) else { return }
        switch message.op {
        case "available":
            connections.send(deviceID: deviceID, text: Self.availableText)
            waiters.wake(deviceID)
        case "cancel":
            guard let commandID = message.command_id.flatMap(UUID.init(uuidString:)) else { return }
            connections.send(deviceID: deviceID, text: Self.cancelText(commandID))
        case "replace":
            connections.close(deviceID: deviceID, code: .replaced, reason: "replaced by a newer connection")
        case "revoke":
            forgetDevice(deviceID)
            connections.close(deviceID: deviceID, code: .forbidden, reason: String((message.reason ?? "revoked").prefix(120)))
        default:
            break
        }
    }

    /// Asks `node` (which the device's presence names) to perform `message` for the device.
    /// Best effort, like every node message: a lost `replace` leaves an older socket open until
    /// the device closes it, a lost `revoke` until that socket's next token check.
    func send(_ message: NodeMessage, to node: String) async {
        guard distributed, node != nodeID else { return }
        do {
            try await pubSub.publish(Self.channel(node), Array(try JSONEncoder().encode(message)))
        } catch {
            logger.warning("node message not published", metadata: [
                "op": .string(message.op), "device_id": .string(message.device_id), "node": .string(node), "error": .string("\(error)"),
            ])
        }
    }

    /// Publishes `message` to the other nodes that hold the device's socket or long poll.
    private func forward(_ message: NodeMessage, deviceID: UUID, includePolls: Bool) async {
        guard distributed else { return }
        do {
            async let socketNode = keyValue.get(DevicePresence.key(deviceID))
            async let pollNode: [UInt8]? = includePolls ? keyValue.get(Self.pollKey(deviceID)) : nil
            var targets = Set<String>()
            for bytes in [try await socketNode, try await pollNode] {
                guard let bytes, !bytes.isEmpty else { continue }
                let node = String(decoding: bytes, as: UTF8.self)
                if node != nodeID { targets.insert(node) }
            }
            guard !targets.isEmpty else { return }
            let payload = Array(try JSONEncoder().encode(message))
            for node in targets { try await pubSub.publish(Self.channel(node), payload) }
        } catch {
            logger.warning("device wake-up not forwarded; the device finds the command at its next claim", metadata: [
                "device_id": .string(deviceID.lowercasedString), "error": .string("\(error)"),
            ])
        }
    }
}

/// What one node asks another to do for a device it holds.
struct NodeMessage: Codable, Equatable {
    /// available, cancel, replace, revoke.
    var op: String
    var device_id: String
    var command_id: String?
    /// revoke: the close reason.
    var reason: String?
}
