import Foundation
import HubAuth
import HubCommands
import HubHTTP
import HubStore

/// The stream messages of `/ws/device` (protocol/websocket.md "Device streams"): `log` (one
/// line), `logs` (a batch of one command's lines) and `status` (the device's status map).
/// Decoded with the envelope in the same parse when `type` names one.
struct DeviceStreamMessage: Decodable {
    var type: String
    var id: String?
    var command_id: String?
    var stream: String?
    var seq: Int64?
    var data: String?
    var lines: [LineBody]?
    var status: JSONValue?

    struct LineBody: Decodable {
        var stream: String
        var seq: Int64
        var data: String
    }

    static let types: Set<String> = ["log", "logs", "status"]

    /// Largest message the device socket reads: a batch of lines fits; the envelope's own
    /// 64 KiB cap stays for every other message (`ClientEnvelope.maxBytes`).
    static let maxBytes = 256 * 1024

    /// A `log` or `logs` message as the command and its validated lines.
    func logBatch() throws(Problem) -> (commandID: UUID, lines: [DeviceStreamService.Line]) {
        guard let raw = command_id, raw.utf8.count <= 64, let commandID = UUID(uuidString: raw) else {
            throw Problem.invalidArgument("command_id must be a command's id")
        }
        var out: [DeviceStreamService.Line] = []
        if type == "log" {
            guard let stream, let seq, let data else { throw Problem.invalidArgument("a log message has stream, seq and data") }
            out = [DeviceStreamService.Line(stream: try Self.stream(stream), seq: seq, data: data)]
        } else {
            guard let lines else { throw Problem.invalidArgument("a logs message has lines") }
            guard lines.count <= DeviceStreamService.maxLinesPerBatch else {
                throw Problem.invalidArgument("a batch has 1...\(DeviceStreamService.maxLinesPerBatch) lines")
            }
            out = try lines.map { line throws(Problem) in DeviceStreamService.Line(stream: try Self.stream(line.stream), seq: line.seq, data: line.data) }
        }
        try DeviceStreamService.validate(out)
        return (commandID, out)
    }

    static func stream(_ raw: String) throws(Problem) -> LogStream {
        guard let stream = LogStream(rawValue: raw) else { throw Problem.invalidArgument("stream must be stdout or stderr") }
        return stream
    }

    /// A `status` message's map as compact JSON text, at most `maxStatusBytes`.
    func statusText() throws -> String {
        guard let text = try DeviceCommandEndpoints.objectText(status, field: "status") else { throw Problem.invalidArgument("status is required") }
        guard text.utf8.count <= DeviceStreamService.maxStatusBytes else {
            throw Problem.invalidArgument("status is larger than \(DeviceStreamService.maxStatusBytes) bytes")
        }
        return text
    }
}
