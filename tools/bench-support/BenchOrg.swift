import ArgumentParser
import Foundation
import HubHTTPClient

// The org a benchmark runs in, made through the hub's public API as a customer would (the
// queue and room benchmarks share it), and the devices file it leaves for the measuring runs.

/// One line of the devices file: "device_id device_secret session_id".
public struct BenchDevice: Sendable {
    public var id: String
    public var secret: String
    public var session: String
    public init(id: String, secret: String, session: String) {
        self.id = id
        self.secret = secret
        self.session = session
    }
}

public func readDevices(_ path: String, limit: Int?) throws -> [BenchDevice] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var list = text.split(separator: "\n").compactMap { line -> BenchDevice? in
        let p = line.split(separator: " ")
        return p.count == 3 ? BenchDevice(id: String(p[0]), secret: String(p[1]), session: String(p[2])) : nil
    }
    guard !list.isEmpty else { throw ValidationError("no devices in \(path); run setup first") }
    if let limit {
        guard limit <= list.count else { throw ValidationError("--count \(limit) but \(path) holds \(list.count) devices") }
        list = Array(list.prefix(limit))
    }
    return list
}

/// What `BenchOrg.create` needs: the admin token, two users (dev JWTs minted by the script) and
/// the shape of the org.
public struct BenchOrgSpec: Sendable {
    public var base: String
    public var adminToken: String
    public var operatorJWT: String
    public var operatorID: String
    public var approverJWT: String
    public var approverID: String
    public var devices: Int
    /// Kind the org approves automatically inside approved sessions.
    public var autoKind: String
    /// Prefix of the org's, devices' and API key's names (the tool's name).
    public var name: String
    public var concurrency: Int

    public init(base: String, adminToken: String, operatorJWT: String, operatorID: String, approverJWT: String, approverID: String,
                devices: Int, autoKind: String, name: String, concurrency: Int) {
        self.base = base
        self.adminToken = adminToken
        self.operatorJWT = operatorJWT
        self.operatorID = operatorID
        self.approverJWT = approverJWT
        self.approverID = approverID
        self.devices = devices
        self.autoKind = autoKind
        self.name = name
        self.concurrency = concurrency
    }
}

public enum BenchOrg {
    /// Through the public API:
    ///   - an org (admin token) whose `auto_approved_kinds` holds `autoKind` and which keeps
    ///     four eyes (`require_distinct_approver: true`), via `PATCH /api/v1/admin/orgs/:id`;
    ///   - the operator and the approver as members;
    ///   - an API key of the org with scope `commands:propose`;
    ///   - the devices, provisioned by the operator and registered with their activation codes;
    ///   - one diagnostic session per device, requested by the operator and approved by the
    ///     approver, so that commands can be proposed into it.
    /// Returns the org id, the API key and the devices (in order).
    public static func create(_ spec: BenchOrgSpec) throws -> (org: String, apiKey: String, devices: [BenchDevice]) {
        let s = spec
        let orgName = "\(s.name)-\(UInt32.random(in: 0...UInt32.max))"
        return try blocking {
            let client = try HTTPClient()
            defer { client.shutdown() }
            let base = s.base
            let org = try await call(client, .post, "\(base)/api/v1/admin/orgs", bearer: s.adminToken, json: ["name": orgName], expect: 201)
            guard let orgID = org["id"] as? String else { throw Failure("org without id: \(org)") }
            _ = try await call(client, .post, "\(base)/api/v1/admin/orgs/\(orgID)/members", bearer: s.adminToken,
                               json: ["user_id": s.operatorID, "role": "operator"], expect: 201)
            _ = try await call(client, .post, "\(base)/api/v1/admin/orgs/\(orgID)/members", bearer: s.adminToken,
                               json: ["user_id": s.approverID, "role": "approver"], expect: 201)
            let patched = try await call(client, .patch, "\(base)/api/v1/admin/orgs/\(orgID)", bearer: s.adminToken,
                                         json: ["auto_approved_kinds": [s.autoKind], "require_distinct_approver": true], expect: 200)
            guard (patched["auto_approved_kinds"] as? [String]) == [s.autoKind] else {
                throw Failure("PATCH /api/v1/admin/orgs/\(orgID): auto_approved_kinds not [\(s.autoKind)] in the answer: \(patched)")
            }
            let key = try await call(client, .post, "\(base)/api/v1/admin/api-keys", bearer: s.adminToken,
                                     json: ["org_id": orgID, "name": "\(s.name) proposer", "scopes": ["commands:propose"]], expect: 201)
            guard let apiKey = key["key"] as? String else { throw Failure("api key without key: \(key.keys.sorted())") }
            let devices: [BenchDevice] = try await concurrently(s.devices, concurrency: s.concurrency) { i in
                let p = try await call(client, .post, "\(base)/api/v1/customer/devices/provision", bearer: s.operatorJWT,
                                       json: ["org_id": orgID, "name": "\(s.name)-\(i)"], expect: 201)
                guard let code = p["activation_code"] as? String else { throw Failure("provision without activation_code: \(p)") }
                let r = try await call(client, .post, "\(base)/api/v1/device/register", json: ["activation_code": code, "name": "\(s.name)-\(i)"], expect: 201)
                guard let id = r["device_id"] as? String, let secret = r["device_secret"] as? String else {
                    throw Failure("register without device_id/device_secret: \(r.keys.sorted())")
                }
                let session = try await call(client, .post, "\(base)/api/v1/customer/sessions", bearer: s.operatorJWT,
                                             json: ["device_id": id, "reason": "\(s.name) benchmark"], expect: 201)
                guard let sid = session["id"] as? String else { throw Failure("session without id: \(session)") }
                guard session["state"] as? String == "pending_approval" else {
                    throw Failure("new session \(sid) is \(session["state"] ?? "nil"), expected pending_approval")
                }
                let a = try await call(client, .post, "\(base)/api/v1/customer/sessions/\(sid)/approve", bearer: s.approverJWT,
                                       json: ["note": "bench"], expect: 200)
                guard a["state"] as? String == "active" else { throw Failure("approved session \(sid) is \(a["state"] ?? "nil"), expected active") }
                return BenchDevice(id: id, secret: secret, session: sid)
            }
            return (orgID, apiKey, devices)
        }
    }

    /// Writes the devices file read by `readDevices`.
    public static func write(_ devices: [BenchDevice], to path: String) throws {
        try (devices.map { "\($0.id) \($0.secret) \($0.session)" }.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
