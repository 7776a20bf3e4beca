import Foundation
import HubCommands
import HubHTTP
import HubTelemetry

/// The queue messages of `/ws/device` (protocol/websocket.md): claim, extend, release,
/// progress, result. Each gets one reply echoing the message's `id`: `commands` for a claim,
/// `ack` with the command's state otherwise, or `error` with the problem's code (and `state`
/// for a stale lease), the same answers as the REST routes.
struct DeviceQueueMessage: Decodable {
    var type: String
    var id: String?
    var max: Int?
    var command_id: String?
    var lease_token: String?
    var seconds: Int?
    var delay_seconds: Int?
    var percent: Int?
    var status: JSONValue?
    var extend_seconds: Int?
    var exit_code: Int32?
    var output: String?

    static let types: Set<String> = ["claim", "extend", "release", "progress", "result"]

    /// Runs the message (decoded with its envelope; nil when a field had the wrong type)
    /// against the lease service and returns the reply's JSON text.
    static func reply(to message: DeviceQueueMessage?, device: UUID, leases: LeaseService) async -> String {
        guard let message else {
            return ServerMessage.error(id: nil, code: "invalid_message", message: "a field has the wrong type").json
        }
        let id = message.id
        do {
            if message.type == "claim" {
                let deliveries = try await leases.claim(deviceID: device, max: message.max ?? 1)
                var fields: [(String, String)] = [("type", "\"commands\"")]
                if let id { fields.append(("id", JSONText.quoted(id))) }
                fields.append(("commands", "[" + deliveries.map(\.json).joined(separator: ",") + "]"))
                return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
            }
            guard let rawID = message.command_id, rawID.utf8.count <= 64, let commandID = UUID(uuidString: rawID) else {
                throw Problem.invalidArgument("command_id must be a command's id")
            }
            let token = try DeviceCommandEndpoints.leaseToken(message.lease_token ?? "")
            let state: LeaseState
            switch message.type {
            case "extend":
                guard let seconds = message.seconds else { throw Problem.invalidArgument("seconds is required") }
                state = try await leases.extend(deviceID: device, commandID: commandID, token: token, seconds: seconds)
            case "release":
                state = try await leases.release(deviceID: device, commandID: commandID, token: token, delaySeconds: message.delay_seconds ?? 0)
            case "progress":
                state = try await leases.progress(deviceID: device, commandID: commandID, token: token, percent: message.percent,
                                                  status: try DeviceCommandEndpoints.objectText(message.status, field: "status"),
                                                  extendSeconds: message.extend_seconds)
            default:  // result
                guard message.status == .string("succeeded") || message.status == .string("failed") else {
                    throw Problem.invalidArgument("status must be succeeded or failed")
                }
                state = try await leases.result(deviceID: device, commandID: commandID, token: token, succeeded: message.status == .string("succeeded"),
                                                exitCode: message.exit_code, output: message.output)
            }
            var fields: [String: ServerMessage.AckValue] = ["command_id": .string(commandID.lowercasedString), "state": .string(state.state)]
            if let at = state.leaseExpiresAt { fields["lease_expires_at"] = .string(WireTime.format(Date(timeIntervalSince1970: Double(at) / 1000)) ?? "") }
            return ServerMessage.ack(id: id, fields: fields).json
        } catch let problem as Problem {
            return ServerMessage.error(id: id, code: problem.code, message: problem.detail ?? problem.title, state: problem.state).json
        } catch {
            return ServerMessage.error(id: id, code: "unavailable", message: "the store is unavailable; retry", state: nil).json
        }
    }
}
