import Foundation
import HubAuth
import HubStore

/// The room events of sessions and commands (protocol/events.md), built in one place.
enum DomainEvents {
    static func sessionRoom(_ id: UUID) -> String { "session:" + id.lowercasedString }
    static func orgRoom(_ id: UUID) -> String { "org:" + id.lowercasedString }

    private static func id(_ u: UUID) -> String { "\"" + u.lowercasedString + "\"" }
    private static func text(_ s: String) -> String { WireText.quoted(s) }

    static func sessionStatus(_ s: DiagnosticSession) -> RoomEvent {
        RoomEvent(rooms: [sessionRoom(s.id), orgRoom(s.orgID)], name: "session.status", data: WireText.object([
            ("session_id", id(s.id)), ("device_id", id(s.deviceID)), ("org_id", id(s.orgID)), ("state", text(s.state.rawValue)),
        ]))
    }

    static func commandStatus(_ c: CommandRecord) -> RoomEvent {
        RoomEvent(rooms: [sessionRoom(c.sessionID)], name: "command.status", data: WireText.object([
            ("command_id", id(c.id)), ("session_id", id(c.sessionID)), ("device_id", id(c.deviceID)),
            ("kind", text(c.kind)), ("state", text(c.state.rawValue)), ("attempts", String(c.attempts)),
        ]))
    }

    static func commandProgress(_ c: CommandRecord, percent: Int?, status: String?) -> RoomEvent {
        var fields: [(String, String)] = [("command_id", id(c.id)), ("session_id", id(c.sessionID))]
        if let percent { fields.append(("percent", String(percent))) }
        if let status { fields.append(("status", status)) }
        return RoomEvent(rooms: [sessionRoom(c.sessionID)], name: "command.progress", data: WireText.object(fields))
    }

    static func sessionApprovalRequested(_ s: DiagnosticSession) -> RoomEvent {
        RoomEvent(rooms: [orgRoom(s.orgID)], name: "approval.requested", data: WireText.object([
            ("subject", "\"session\""), ("id", id(s.id)), ("session_id", id(s.id)), ("device_id", id(s.deviceID)),
            ("requested_by", id(s.requestedBy)), ("reason", text(s.reason)),
        ]))
    }

    static func commandApprovalRequested(_ c: CommandRecord) -> RoomEvent {
        RoomEvent(rooms: [orgRoom(c.orgID)], name: "approval.requested", data: WireText.object([
            ("subject", "\"command\""), ("id", id(c.id)), ("session_id", id(c.sessionID)), ("device_id", id(c.deviceID)),
            ("requested_by", text(c.proposedBy)), ("kind", text(c.kind)),
        ]))
    }

    /// `decision`: approved, rejected or expired.
    static func approvalDecided(subject: String, id subjectID: UUID, sessionID: UUID, deviceID: UUID, orgID: UUID,
                                decision: String, decidedBy: UUID?) -> RoomEvent {
        var fields: [(String, String)] = [
            ("subject", text(subject)), ("id", id(subjectID)), ("session_id", id(sessionID)), ("device_id", id(deviceID)),
            ("decision", text(decision)),
        ]
        fields.append(("decided_by", decidedBy.map(id) ?? "null"))
        return RoomEvent(rooms: [orgRoom(orgID)], name: "approval.decided", data: WireText.object(fields))
    }

    static func deviceRoom(_ id: UUID) -> String { "device:" + id.lowercasedString }

    /// One new log line of a command, into its session's room.
    static func executionLog(_ command: DeviceStreamService.HeldCommand, _ line: DeviceStreamService.Line) -> RoomEvent {
        RoomEvent(rooms: [sessionRoom(command.sessionID)], name: "execution.log", data: WireText.object([
            ("command_id", id(command.commandID)), ("session_id", id(command.sessionID)), ("stream", text(line.stream.rawValue)),
            ("seq", String(line.seq)), ("data", text(line.data)),
        ]))
    }

    /// A device went online or offline, or reported its status; into its own room and its org's.
    static func deviceStatus(deviceID: UUID, orgID: UUID, online: Bool, node: String?, status: String?, lastSeenAt: Date?) -> RoomEvent {
        var fields: [(String, String)] = [("device_id", id(deviceID)), ("org_id", id(orgID)), ("online", online ? "true" : "false")]
        if let node { fields.append(("node", text(node))) }
        if let status { fields.append(("status", status)) }
        if let lastSeenAt { fields.append(("last_seen_at", "\"" + WireText.time(millis: Int64((lastSeenAt.timeIntervalSince1970 * 1000).rounded(.down))) + "\"")) }
        return RoomEvent(rooms: [deviceRoom(deviceID), orgRoom(orgID)], name: "device.status", data: WireText.object(fields))
    }
}
