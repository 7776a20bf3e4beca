import ArgumentParser
import BenchSupport
import Foundation

/// `setup`: the org, users, API key, devices and approved sessions (`BenchOrg.create`); the
/// kind `--auto-kind` is approved automatically, so `stream` can queue one command per device
/// without an approver in the loop.
struct Setup: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Org, users, API key, devices and approved sessions through the public API.")
    @Option(help: "Hub base URL, http://HOST:PORT.") var url = "http://127.0.0.1:8080"
    @Option(help: "The hub's --admin-token.") var adminToken: String
    @Option(help: "Access token of the operator user (hubctl mint-dev-jwt); the portals use it too.") var operatorJwt: String
    @Option(help: "The operator's user id (the token's sub).") var operatorId: String
    @Option(help: "Access token of the approver user (approves the sessions).") var approverJwt: String
    @Option(help: "The approver's user id.") var approverId: String
    @Option(help: "Devices (each with an approved session, i.e. a room).") var count = 1000
    @Option(help: "Output: \"device_id device_secret session_id\" lines.") var devices: String
    @Option(help: "Kind approved automatically inside approved sessions.") var autoKind = "bench.room"
    @Option(help: "Requests in flight at once during setup.") var concurrency = 16

    func run() throws {
        let started = Date()
        let out = try BenchOrg.create(BenchOrgSpec(
            base: try parseBase(url, option: "--url").base, adminToken: adminToken, operatorJWT: operatorJwt, operatorID: operatorId,
            approverJWT: approverJwt, approverID: approverId, devices: count, autoKind: autoKind, name: "room-bench", concurrency: concurrency))
        try BenchOrg.write(out.devices, to: devices)
        Log.note(String(format: "org %@: %d devices with active sessions in %.1f s → %@", out.org, count, Date().timeIntervalSince(started), devices))
        print(json([("org_id", out.org), ("api_key", out.apiKey), ("auto_kind", autoKind), ("devices", count)]))
    }
}
