import BenchSupport
import ArgumentParser
import Foundation

/// `setup`: everything a run needs, through the hub's public API (docs: /work/plan/QUEUE.md;
/// the org, users, API key, devices and approved sessions: `BenchOrg.create`). Writes
/// "device_id device_secret session_id" lines to --devices and prints one JSON object
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
        let started = Date()
        let out = try BenchOrg.create(BenchOrgSpec(
            base: try parseBase(url, option: "--url").base, adminToken: adminToken, operatorJWT: operatorJwt, operatorID: operatorId,
            approverJWT: approverJwt, approverID: approverId, devices: count, autoKind: autoKind, name: orgName, concurrency: concurrency))
        try BenchOrg.write(out.devices, to: devices)
        Log.note(String(format: "org %@: %d devices with active sessions in %.1f s → %@", out.org, count, Date().timeIntervalSince(started), devices))
        print(json([("org_id", out.org), ("api_key", out.apiKey), ("auto_kind", autoKind), ("devices", count)]))
    }
}
