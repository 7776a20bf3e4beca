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
struct DeviceRouter: DeviceWakeups {
    let nodeID: String
    let connections: DeviceConnections
    let waiters: ClaimWaiters
    let keyValue: any KeyValueStore
    let pubSub: any PubSub
    /// False on the embedded store: one process, so every device is local.
    let distributed: Bool
    let logger: Logger

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
        default:
            break
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
    var op: String
    var device_id: String
    var command_id: String?
}
