import BenchSupport
import ArgumentParser
import Foundation
import HubHTTPClient

/// `setup`: everything a run needs, through the hub's public API (docs: /work/plan/QUEUE.md):
///   - an org (admin token) whose `auto_approved_kinds` holds `--auto-kind` and which keeps
///     four eyes (`require_distinct_approver: true`), via `PATCH /api/v1/admin/orgs/:id`;
///   - an operator user and an approver user (dev JWTs minted by the script) as members;
///   - an API key of the org with scope `commands:propose` (the proposer of every command);
///   - D devices, provisioned by the operator and registered with their activation codes;
///   - one diagnostic session per device, requested by the operator and approved by the
///     approver, so that commands can be proposed into it.
/// Writes "device_id device_secret session_id" lines to --devices and prints one JSON object
/// `{org_id, api_key, auto_kind, devices}` on stdout.
struct Setup: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Org, users, API key, devices and approved sessions through the public API.")
    @Option(help: "Hub base URL, http://HOST:PORT.") var url = "http://127.0.0.1:8080"
    @Option(help: "The hub's --admin-token.") var adminToken: String
    @Option(help: "Access token of the operator user (hubctl mint-dev-jwt).") var operatorJwt: String
    @Option(help: "The operator's user id (the token's sub).") var operatorId: String
    @Option(help: "Access token of the approver user.") var approverJwt: String
    @Option(help: "The approver's user id.") var approverId: String
    @Option(help: "Devices (each with an approved session).") var count = 1000
    @Option(help: "Output: \"device_id device_secret session_id\" lines.") var devices: String
    @Option(help: "Kind approved automatically inside approved sessions.") var autoKind = "bench.auto"
    @Option(help: "Org name.") var orgName = "queue-bench"
    @Option(help: "Requests in flight at once during setup.") var concurrency = 16

    func run() throws {
        let base = try parseBase(url, option: "--url").base
        let admin = adminToken, op = operatorJwt, ap = approverJwt, kind = autoKind
        let name = "\(orgName)-\(UInt32.random(in: 0...UInt32.max))"
        let count = self.count, concurrency = self.concurrency
        let operatorId = self.operatorId, approverId = self.approverId
        let started = Date()
        let out: (org: String, key: String, lines: [String]) = try blocking {
            let client = try HTTPClient()
            defer { client.shutdown() }
            let org = try await call(client, .post, "\(base)/api/v1/admin/orgs", bearer: admin, json: ["name": name], expect: 201)
            guard let orgID = org["id"] as? String else { throw Failure("org without id: \(org)") }
            _ = try await call(client, .post, "\(base)/api/v1/admin/orgs/\(orgID)/members", bearer: admin,
                               json: ["user_id": operatorId, "role": "operator"], expect: 201)
            _ = try await call(client, .post, "\(base)/api/v1/admin/orgs/\(orgID)/members", bearer: admin,
                               json: ["user_id": approverId, "role": "approver"], expect: 201)
            let patched = try await call(client, .patch, "\(base)/api/v1/admin/orgs/\(orgID)", bearer: admin,
                                         json: ["auto_approved_kinds": [kind], "require_distinct_approver": true], expect: 200)
            guard (patched["auto_approved_kinds"] as? [String]) == [kind] else {
                throw Failure("PATCH /api/v1/admin/orgs/\(orgID): auto_approved_kinds not [\(kind)] in the answer: \(patched)")
            }
            let key = try await call(client, .post, "\(base)/api/v1/admin/api-keys", bearer: admin,
                                     json: ["org_id": orgID, "name": "queue-bench proposer", "scopes": ["commands:propose"]], expect: 201)
            guard let apiKey = key["key"] as? String else { throw Failure("api key without key: \(key.keys.sorted())") }
            let lines: [String] = try await concurrently(count, concurrency: concurrency) { i in
                let p = try await call(client, .post, "\(base)/api/v1/customer/devices/provision", bearer: op,
                                       json: ["org_id": orgID, "name": "qb-\(i)"], expect: 201)
                guard let code = p["activation_code"] as? String else { throw Failure("provision without activation_code: \(p)") }
                let r = try await call(client, .post, "\(base)/api/v1/device/register", json: ["activation_code": code, "name": "qb-\(i)"], expect: 201)
                guard let id = r["device_id"] as? String, let secret = r["device_secret"] as? String else {
                    throw Failure("register without device_id/device_secret: \(r.keys.sorted())")
                }
                let s = try await call(client, .post, "\(base)/api/v1/customer/sessions", bearer: op,
                                       json: ["device_id": id, "reason": "queue benchmark"], expect: 201)
                guard let sid = s["id"] as? String else { throw Failure("session without id: \(s)") }
                guard s["state"] as? String == "pending_approval" else {
                    throw Failure("new session \(sid) is \(s["state"] ?? "nil"), expected pending_approval")
                }
                let a = try await call(client, .post, "\(base)/api/v1/customer/sessions/\(sid)/approve", bearer: ap,
                                       json: ["note": "bench"], expect: 200)
                guard a["state"] as? String == "active" else { throw Failure("approved session \(sid) is \(a["state"] ?? "nil"), expected active") }
                return "\(id) \(secret) \(sid)"
            }
            return (orgID, apiKey, lines)
        }
        try (out.lines.joined(separator: "\n") + "\n").write(toFile: devices, atomically: true, encoding: .utf8)
        Log.note(String(format: "org %@: %d devices with active sessions in %.1f s → %@", out.org, count, Date().timeIntervalSince(started), devices))
        print(json([("org_id", out.org), ("api_key", out.key), ("auto_kind", autoKind), ("devices", count)]))
    }
}
