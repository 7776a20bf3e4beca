import Foundation
import HubAuth
import HubHTTP
import HubStore

/// What a device streams to the hub besides its queue messages: execution log lines of the
/// commands it runs, and its own status (protocol/websocket.md "Device streams").
///
/// Log lines are deduplicated by the record store, not by the connection: a line whose
/// (command, seq) is already stored is ignored, so an agent that resends after a reconnect, on
/// another node or over REST, never produces a second `execution.log` event. The events of the
/// lines that were new go out in seq order within one batch; an agent sends its lines in order,
/// so a command's events are in order too (a gap filled later is emitted late, never twice).
public struct DeviceStreamService: Sendable {
    let context: CommandContext

    public init(context: CommandContext) {
        self.context = context
    }

    /// Largest `data` of one line, in UTF-8 bytes.
    public static let maxLineBytes = 16 * 1024
    /// Most lines in one batch (`logs` message or REST call).
    public static let maxLinesPerBatch = 100
    /// Highest seq: exact in every JSON reader (2^53).
    public static let maxSeq: Int64 = 1 << 53
    /// Largest device-reported status map, as compact JSON.
    public static let maxStatusBytes = 2048

    /// One line as the device sends it.
    public struct Line: Sendable, Equatable {
        public var stream: LogStream
        public var seq: Int64
        public var data: String

        public init(stream: LogStream, seq: Int64, data: String) {
            self.stream = stream
            self.seq = seq
            self.data = data
        }
    }

    /// What the command a device writes lines for needs to route them: its session.
    public struct HeldCommand: Sendable, Equatable {
        public var commandID: UUID
        public var sessionID: UUID

        public init(commandID: UUID, sessionID: UUID) {
            self.commandID = commandID
            self.sessionID = sessionID
        }
    }

    public struct Appended: Sendable, Equatable {
        /// Lines stored now (and emitted).
        public var accepted: Int
        /// Lines already stored before (resent).
        public var duplicates: Int
    }

    /// Checks a batch before anything is written: 1...`maxLinesPerBatch` lines, seq
    /// 1...`maxSeq`, data at most `maxLineBytes` without NUL.
    public static func validate(_ lines: [Line]) throws(Problem) {
        guard (1...maxLinesPerBatch).contains(lines.count) else { throw Problem.invalid("a batch has 1...\(maxLinesPerBatch) lines") }
        for line in lines {
            guard (1...maxSeq).contains(line.seq) else { throw Problem.invalid("seq must be 1...\(maxSeq)") }
            guard line.data.utf8.count <= maxLineBytes else { throw Problem.invalid("data is larger than \(maxLineBytes) bytes") }
            guard !line.data.utf8.contains(0) else { throw Problem.invalid("data must not contain NUL") }
        }
    }

    /// The command when `deviceID` holds it now: its record names the device and is `claimed`
    /// (with `leaseToken`, by that delivery). A command of another device, or none, is 404
    /// (the same answer, so ids cannot be probed); one of this device that is not claimed is
    /// 409 `lease_conflict` with its state.
    public func held(deviceID: UUID, commandID: UUID, leaseToken: UUID?) async throws -> HeldCommand {
        guard let record = try await context.records.command(id: commandID), record.deviceID == deviceID else { throw Problem.missing("command") }
        guard record.state == .claimed else { throw Problem.leaseConflict(state: record.state.rawValue, "the command is not claimed") }
        if let leaseToken, record.leaseToken != leaseToken { throw Problem.leaseConflict(state: record.state.rawValue) }
        return HeldCommand(commandID: record.id, sessionID: record.sessionID)
    }

    /// Stores a validated batch of one held command's lines and emits `execution.log` for each
    /// new one, by seq.
    public func append(_ lines: [Line], to command: HeldCommand) async throws -> Appended {
        let at = Date.storeNow()
        let ordered = lines.sorted { $0.seq < $1.seq }
        let new = try await context.records.appendLogLinesReportingNew(ordered.map {
            ExecutionLogLine(commandID: command.commandID, seq: $0.seq, stream: $0.stream, line: $0.data, at: at)
        })
        if !new.isEmpty {
            let newSeqs = Set(new)
            var emitted = Set<Int64>()
            for line in ordered where newSeqs.contains(line.seq) && emitted.insert(line.seq).inserted {
                await context.emit(DomainEvents.executionLog(command, line))
            }
        }
        return Appended(accepted: new.count, duplicates: lines.count - new.count)
    }

    /// Emits `device.status`: `online` on connect and on a `status` report, offline on
    /// disconnect. `status` is the device's own map (JSON object text), checked by the caller.
    public func reportStatus(device: DevicePrincipal, online: Bool, node: String?, status: String?) async {
        await context.emit(DomainEvents.deviceStatus(deviceID: device.deviceID, orgID: device.orgID, online: online, node: node,
                                                     status: status, lastSeenAt: Date()))
    }
}
