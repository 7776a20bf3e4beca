import Foundation
import HubStore
import XCTest

/// An org with an operator, an approver and a viewer, one registered device with a token, and
/// helpers for the session/command calls the queue tests make.
struct QueueFixture {
    let hub: IdentityTestHub
    let org: UUID
    let operatorUser = UUID(), approver = UUID(), viewer = UUID()
    let device: UUID
    let deviceToken: String

    init(_ hub: IdentityTestHub, name: String = "Queue") throws {
        self.hub = hub
        org = try hub.makeOrg("\(name) \(UUID().uuidString.prefix(6))", members: [operatorUser: .operator, approver: .approver, viewer: .viewer])
        let d = try hub.makeDevice(org: org, as: operatorUser)
        device = d.id
        deviceToken = try hub.deviceToken(d.id, d.secret)
    }

    var op: String { IdentityTestHub.jwt(operatorUser) }
    var ap: String { IdentityTestHub.jwt(approver) }
    var vw: String { IdentityTestHub.jwt(viewer) }

    /// Sets which kinds run without their own approval.
    func autoApprove(_ kinds: [String], fourEyes: Bool = true) throws {
        try hub.expect(200, "PATCH", "/api/v1/admin/orgs/\(org.uuidString)", bearer: IdentityTestHub.adminToken,
                       json: ["auto_approved_kinds": kinds, "require_distinct_approver": fourEyes])
    }

    /// A session opened by the operator and approved by the approver.
    func activeSession() throws -> String {
        let s = try hub.expect(201, "POST", "/api/v1/customer/sessions", bearer: op, json: ["device_id": device.uuidString, "reason": "diagnose"])
        let id = try XCTUnwrap(s["id"] as? String)
        try hub.expect(200, "POST", "/api/v1/customer/sessions/\(id)/approve", bearer: ap, json: [:])
        return id
    }

    @discardableResult
    func propose(_ session: String, _ kind: String, status: Int = 201, extra: [String: Any] = [:]) throws -> [String: Any] {
        var body: [String: Any] = ["kind": kind, "args": ["n": 1]]
        for (k, v) in extra { body[k] = v }
        return try hub.expect(status, "POST", "/api/v1/customer/sessions/\(session)/commands", bearer: op, json: body)
    }

    func claim(max: Int = 1, wait: Double = 0, token: String? = nil) throws -> [[String: Any]] {
        let r = try hub.expect(200, "POST", "/api/v1/device/commands/claim", bearer: token ?? deviceToken, json: ["max": max, "wait_seconds": wait])
        return r["commands"] as? [[String: Any]] ?? []
    }

    func command(_ id: String) throws -> [String: Any] {
        try hub.expect(200, "GET", "/api/v1/customer/commands/\(id)", bearer: vw)
    }

    func lease(_ op: String, _ id: String, status: Int = 200, _ body: [String: Any]) throws -> [String: Any] {
        try hub.expect(status, "POST", "/api/v1/device/commands/\(id)/\(op)", bearer: deviceToken, json: body)
    }

    /// The command's recorded event names, in order (read from the store).
    func events(_ id: String) async throws -> [String] {
        try await hub.stores.records.commandEvents(commandID: UUID(uuidString: id)!).map(\.event)
    }

    /// The event names in a room's history, oldest first.
    static func roomEvents(_ hub: IdentityTestHub, _ room: String) async throws -> [String] {
        let read = try await hub.stores.streams.read("room:" + room, after: 0, limit: 1000)
        return read.entries.compactMap { entry in
            (try? JSONSerialization.jsonObject(with: Data(entry.payload)) as? [String: Any])?["event"] as? String
        }
    }

    static func eventuallyAsync(timeout: Double = 5, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// Runs the reaper until `condition` holds or `timeout` passes.
    static func eventually(timeout: Double = 10, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }
}
