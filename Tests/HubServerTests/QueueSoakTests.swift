import Foundation
import HubSQLite
import HubTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Randomized soak and fault tests of the command queue (issue 9) against real hub processes.
///
/// `Tests/peers/queue_soak.py` plays an operator, an approver and hundreds of devices (REST and
/// `/ws/device`) and asks for faults through a control channel (a `CONTROL n action` line on its
/// stdout, answered on its stdin); this file starts the stores and hubs, performs the faults
/// (`kill -9` and restart of a hub, Redis `FLUSHALL`), and at the end checks the driver's report
/// against the records themselves (psql on the PostgreSQL database, the SQLite file of the
/// embedded store):
///
/// - every proposal the driver got a 201 (or an idempotent 200) for exists exactly once; no
///   command exists that the driver did not propose (each proposal carries a nonce in its
///   args; a proposal whose answer was lost may or may not exist, at most once); idempotency
///   keys are unique per session;
/// - every command is terminal, reached exactly one terminal state (one transition into it in
///   `command_events`, none out of it), its events chain (`from_state` = the previous
///   `to_state`), at most one result;
/// - what the devices were told agrees with the records: an accepted result is the final
///   state (with its exit code), two different leases never both had a result accepted, a
///   succeeded/failed command had a result answered 200 (or one whose answer was lost), a
///   canceled command was canceled by the operator or by closing its session, a rejected one
///   was rejected, a dead-lettered one used all its attempts, no delivery beyond
///   `max_attempts`, the API's final state equals the record's;
/// - and everything the driver saw from the outside (in its report's `violations`): overlapping
///   leases, a lapsed lease accepted, a terminal command delivered, idempotency answers,
///   contract shapes, socket messages outside `protocol/ws`.
///
/// Scale and duration are set for a modest runtime (about a minute each); the seed is printed
/// and `DEVICEHUB_SOAK_SEED` replays the driver's choices (timing still varies).
final class QueueSoakTests: XCTestCase {
    func testRandomizedSoakOnTwoNodesWithAKilledNode() throws {
        try runNetworkedSoak(name: "soak", devices: 200, duration: 25, rate: 30, faults: ["kill-restart 1"])
    }

    func testRedisFlushAllDuringTheSoakRebuildsTheQueueFromTheRecords() throws {
        try runNetworkedSoak(name: "flushall", devices: 100, duration: 20, rate: 25, faults: ["flushall"])
    }

    func testEmbeddedStoreKeepsTheQueueAcrossKillAndRestart() throws {
        let dataDir = NSTemporaryDirectory() + "devicehub-soak-embedded-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let cluster = try SoakCluster(embeddedDataDirectory: dataDir)
        defer { cluster.stop() }
        let report = try runDriver(name: "embedded", cluster: cluster,
                                   extra: ["--mode", "embedded", "--devices", "10", "--vts", "6", "--settle-timeout", "40"],
                                   timeout: 180)
        // Read the records after a clean stop (SQLite is read from the file the hub wrote).
        cluster.nodes[0].signal(SIGTERM)
        _ = cluster.nodes[0].waitForExit(timeout: 15)
        let records = try SoakRecords.sqlite(path: dataDir + "/devicehub.sqlite", orgID: report.orgID)
        var failures = SoakChecker(report: report, records: records).check()
        for row in records.commands where row.state != "succeeded" && row.state != "failed" {
            failures.append("embedded: command \(row.id) ended \(row.state); every command must be delivered and finished after the restart")
        }
        finish(name: "embedded", report: report, records: records, failures: failures, cluster: cluster)
    }

    // MARK: - runs

    private func runNetworkedSoak(name: String, devices: Int, duration: Int, rate: Int, faults: [String]) throws {
        let cluster = try SoakCluster(networkedNodes: 2)
        defer { cluster.stop() }
        let report = try runDriver(name: name, cluster: cluster,
                                   extra: ["--devices", "\(devices)", "--duration", "\(duration)", "--rate", "\(rate)",
                                           "--faults", faults.joined(separator: ","), "--settle-timeout", "60"],
                                   timeout: Double(duration) + 240)
        let records = try SoakRecords.postgres(cluster.postgres!, orgID: report.orgID)
        let failures = SoakChecker(report: report, records: records).check()
        finish(name: name, report: report, records: records, failures: failures, cluster: cluster)
    }

    /// Runs the driver to its end, performing the faults it asks for; returns its report.
    private func runDriver(name: String, cluster: SoakCluster, extra: [String], timeout: Double) throws -> SoakReport {
        let out = NSTemporaryDirectory() + "queue-soak-\(name)-\(UUID().uuidString.prefix(8)).json"
        var args = [PythonPeer.script("queue_soak.py"),
                    "--nodes", cluster.ports.map { "127.0.0.1:\($0)" }.joined(separator: ","),
                    "--admin-token", IdentityTestHub.adminToken, "--jwt-secret", IdentityTestHub.jwtSecret,
                    "--supabase-url", IdentityTestHub.supabaseURL, "--out", out,
                    "--schemas", PythonPeer.repositoryRoot.appendingPathComponent("protocol/ws").path]
        if let seed = ProcessInfo.processInfo.environment["DEVICEHUB_SOAK_SEED"] { args += ["--seed", seed] }
        args += extra
        let driver = try SoakDriver(arguments: args)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let line = driver.nextLine() {
                guard line.hasPrefix("CONTROL ") else { continue }
                let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
                guard parts.count == 3 else { continue }
                let answer: String
                do { answer = try cluster.perform(parts[2]) } catch { answer = "error \(error)" }
                print("queue soak \(name): \(parts[2]) → \(answer)")
                driver.reply("\(parts[1]) \(answer)")
            }
            if !driver.process.isRunning { break }
            if Date() > deadline {
                driver.process.terminate()
                XCTFail("the soak driver did not finish within \(Int(timeout)) s:\n\(driver.stderrText.suffix(6000))")
                throw TestError("soak driver timed out")
            }
            usleep(50_000)
        }
        let log = driver.stderrText
        guard driver.process.terminationStatus == 0, let data = FileManager.default.contents(atPath: out),
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            XCTFail("the soak driver failed (status \(driver.process.terminationStatus)):\n\(log.suffix(8000))")
            throw TestError("no soak report")
        }
        print("queue soak \(name): driver log tail:\n\(log.suffix(3000))")
        return SoakReport(json, path: out)
    }

    private func finish(name: String, report: SoakReport, records: SoakRecords, failures: [String], cluster: SoakCluster,
                        file: StaticString = #filePath, line: UInt = #line) {
        print("queue soak \(name): \(SoakChecker.summary(report: report, records: records))")
        guard !failures.isEmpty else {
            try? FileManager.default.removeItem(atPath: report.path)
            return
        }
        print("queue soak \(name): the driver's report is kept at \(report.path)")
        for (i, node) in cluster.nodes.enumerated() {
            print("queue soak \(name): hub \(i) log tail:\n\(node.log.suffix(4000))")
        }
        // Grouped by what failed: the driver's outside view, the records, their event log, and
        // whether the two agree.
        var groups: [String: Int] = [:]
        for f in failures { groups[String(f.prefix { $0 != ":" }), default: 0] += 1 }
        let shown = failures.prefix(60).joined(separator: "\n")
        XCTFail("queue soak \(name) (seed \(report.seed)): \(failures.count) violations "
                + "(\(groups.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))):\n\(shown)"
                + (failures.count > 60 ? "\n… and \(failures.count - 60) more" : ""), file: file, line: line)
    }
}

// MARK: - the hubs and stores

/// One or two hub processes: on one Redis + one PostgreSQL, or one on the embedded store.
final class SoakCluster {
    let redis: RedisTestServer?
    let postgres: PostgresTestServer?
    private(set) var nodes: [HubProcess] = []
    private(set) var ports: [Int] = []
    private let arguments: [[String]]

    private static func common() -> [String] {
        ["--host", "127.0.0.1", "--port", "0", "--loops", "2", "--no-access-log",
         "--admin-token", IdentityTestHub.adminToken, "--supabase-jwt-secret", IdentityTestHub.jwtSecret,
         "--supabase-url", IdentityTestHub.supabaseURL,
         // Hundreds of simulated devices share 127.0.0.1 and one operator proposes all: the
         // rate limits are not what this test is about.
         "--requests-per-minute", "10000000", "--auth-failures-per-minute-per-ip", "10000000",
         "--reaper-interval", "1",
         // Crash-between-writes (a node killed between a record write and its queue write) is
         // repaired by the periodic reconcile; the test waits for it, so it runs often here.
         "--queue-reconcile-interval", "5"]
    }

    init(networkedNodes count: Int) throws {
        let redis = try RedisTestServer.startPrivate()
        let postgres: PostgresTestServer
        do { postgres = try PostgresTestServer.start() } catch { redis.stop(); throw error }
        self.redis = redis
        self.postgres = postgres
        arguments = (0..<count).map { i in
            Self.common() + ["--redis-url", redis.url, "--postgres-url", postgres.url, "--hash-key", testHashKey, "--node-id", "soak-node-\(i)"]
        }
        do {
            for i in 0..<count {
                nodes.append(try HubProcess(arguments: arguments[i]))
                ports.append(0)
                ports[i] = try waitReady(i)
            }
        } catch {
            stop()
            throw error
        }
    }

    init(embeddedDataDirectory dir: String) throws {
        redis = nil
        postgres = nil
        arguments = [Self.common() + ["--data-dir", dir, "--node-id", "soak-embedded"]]
        nodes = [try HubProcess(arguments: arguments[0])]
        ports = [0]
        do { ports[0] = try waitReady(0) } catch { stop(); throw error }
    }

    private func waitReady(_ i: Int) throws -> Int {
        let port = try nodes[i].waitUntilListening(timeout: 60)
        let deadline = Date().addingTimeInterval(30)
        while (try? TestClient(port: port).request("GET", "/readyz").status) != 200 {
            if Date() > deadline { throw TestError("hub \(i) not ready:\n\(nodes[i].log.suffix(3000))") }
            usleep(50_000)
        }
        return port
    }

    /// A fault the driver asked for; the answer goes back to it.
    func perform(_ action: String) throws -> String {
        let words = action.split(separator: " ").map(String.init)
        switch words.first {
        case "kill-restart":
            guard words.count == 2, let i = Int(words[1]), nodes.indices.contains(i) else { return "error bad action" }
            nodes[i].signal(SIGKILL)
            guard nodes[i].waitForExit(timeout: 10) != nil else { return "error hub \(i) survived SIGKILL" }
            usleep(1_000_000)
            nodes[i] = try HubProcess(arguments: arguments[i])
            ports[i] = try waitReady(i)
            return "ok port=\(ports[i])"
        case "flushall":
            guard let redis else { return "error no redis" }
            let reply = String(decoding: try redis.cli(["FLUSHALL"]), as: UTF8.self)
            return reply.contains("OK") ? "ok" : "error FLUSHALL answered \(reply)"
        default:
            return "error unknown action \(action)"
        }
    }

    func stop() {
        for node in nodes where node.process.isRunning {
            node.signal(SIGKILL)
            _ = node.waitForExit(timeout: 10)
        }
        redis?.stop()
        postgres?.stop()
    }
}

/// The Python driver as a child process: stdout lines (control requests) read as they come,
/// stdin for the answers, stderr collected for the log.
final class SoakDriver {
    let process = Process()
    private let stdinPipe = Pipe(), stdoutPipe = Pipe(), stderrPipe = Pipe()
    private let lock = NSLock()
    private var out = Data(), err = Data()

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try PythonPeer.interpreter())
        process.arguments = arguments
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock(); self.out.append(d); self.lock.unlock()
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock(); self.err.append(d); self.lock.unlock()
        }
        try process.run()
    }

    /// The next complete stdout line, if any.
    func nextLine() -> String? {
        lock.lock(); defer { lock.unlock() }
        guard let nl = out.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: out[out.startIndex..<nl], as: UTF8.self)
        out.removeSubrange(out.startIndex...nl)
        return line
    }

    func reply(_ text: String) {
        stdinPipe.fileHandleForWriting.write(Data((text + "\n").utf8))
    }

    var stderrText: String {
        if !process.isRunning {
            stderrPipe.fileHandleForReading.readabilityHandler = nil
            let rest = stderrPipe.fileHandleForReading.readDataToEndOfFile()
            lock.lock(); err.append(rest); lock.unlock()
        }
        lock.lock(); defer { lock.unlock() }
        return String(decoding: err, as: UTF8.self)
    }

    deinit {
        if process.isRunning { process.terminate() }
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
    }
}

// MARK: - the driver's report

struct SoakReport {
    let raw: [String: Any]
    /// The report file (removed when the test passes).
    let path: String
    var orgID: String { raw["org_id"] as? String ?? "" }
    var seed: Int { raw["seed"] as? Int ?? -1 }
    var proposals: [[String: Any]] { raw["proposals"] as? [[String: Any]] ?? [] }
    var commands: [String: [String: Any]] { raw["commands"] as? [String: [String: Any]] ?? [:] }
    var violations: [[String: Any]] { raw["violations"] as? [[String: Any]] ?? [] }
    var closedSessions: Set<String> { Set((raw["closed_sessions"] as? [String: Any] ?? [:]).keys) }
    var stats: [String: Any] { raw["stats"] as? [String: Any] ?? [:] }

    init(_ raw: [String: Any], path: String) {
        self.raw = raw
        self.path = path
    }
}

// MARK: - the records

struct SoakRecords {
    struct Command {
        var id, sessionID, deviceID, state, kind: String
        var attempts, maxAttempts: Int
        var idempotencyKey: String?
        var nonce: String?
        var exitCode: Int?
        var needsApproval: Bool
    }

    struct Event {
        var commandID: String
        var seq: Int64
        var event: String
        var from: String?
        var to: String?
    }

    var commands: [Command]
    var events: [Event]

    private static func optional(_ s: String) -> String? { s.isEmpty ? nil : s }

    private static func parse(commandRows: [[String]], eventRows: [[String]]) throws -> SoakRecords {
        let commands = try commandRows.map { f -> Command in
            guard f.count == 11 else { throw TestError("command row with \(f.count) fields: \(f)") }
            return Command(id: f[0].lowercased(), sessionID: f[1].lowercased(), deviceID: f[2].lowercased(), state: f[3], kind: f[9],
                           attempts: Int(f[4]) ?? -1, maxAttempts: Int(f[5]) ?? -1, idempotencyKey: optional(f[6]),
                           nonce: optional(f[7]), exitCode: Int(f[8]), needsApproval: ["t", "1", "true"].contains(f[10]))
        }
        let events = try eventRows.map { f -> Event in
            guard f.count == 5 else { throw TestError("event row with \(f.count) fields: \(f)") }
            return Event(commandID: f[0].lowercased(), seq: Int64(f[1]) ?? -1, event: f[2], from: optional(f[3]), to: optional(f[4]))
        }
        return SoakRecords(commands: commands, events: events)
    }

    /// psql (an independent client) on the hubs' PostgreSQL database.
    static func postgres(_ server: PostgresTestServer, orgID: String) throws -> SoakRecords {
        guard UUID(uuidString: orgID) != nil else { throw TestError("no org id in the report") }
        func rows(_ sql: String) throws -> [[String]] {
            let text = try server.psql(sql)
            return text.isEmpty ? [] : text.split(separator: "\n", omittingEmptySubsequences: false).map {
                $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            }
        }
        let commands = try rows("""
            SELECT c.id, c.session_id, c.device_id, c.state, c.attempts, c.max_attempts, coalesce(c.idempotency_key, ''),
                   coalesce(c.arguments->>'nonce', ''), coalesce(c.exit_code::text, ''), c.kind, c.needs_approval
            FROM devicehub.commands c WHERE c.org_id = '\(orgID)' ORDER BY c.seq
            """)
        let events = try rows("""
            SELECT e.command_id, e.id, e.event, coalesce(e.from_state, ''), coalesce(e.to_state, '')
            FROM devicehub.command_events e JOIN devicehub.commands c ON c.id = e.command_id
            WHERE c.org_id = '\(orgID)' ORDER BY e.command_id, e.id
            """)
        return try parse(commandRows: commands, eventRows: events)
    }

    /// The embedded store's SQLite file, read directly.
    static func sqlite(path: String, orgID: String) throws -> SoakRecords {
        guard UUID(uuidString: orgID) != nil else { throw TestError("no org id in the report") }
        let org = orgID.lowercased()
        return try blocking {
            let db = try await SQLiteDatabase.open(path: path)
            func rows(_ sql: String) async throws -> [[String]] {
                try await db.query(sql).map { row in
                    row.values.map { v -> String in
                        switch v {
                        case .text(let s): return s
                        case .integer(let i): return String(i)
                        case .real(let d): return String(d)
                        case .blob, .null: return ""
                        }
                    }
                }
            }
            let commands = try await rows("""
                SELECT id, session_id, device_id, state, attempts, max_attempts, coalesce(idempotency_key, ''),
                       coalesce(json_extract(arguments, '$.nonce'), ''), coalesce(CAST(exit_code AS TEXT), ''), kind, needs_approval
                FROM commands WHERE lower(org_id) = '\(org)' ORDER BY seq
                """)
            let events = try await rows("""
                SELECT e.command_id, e.id, e.event, coalesce(e.from_state, ''), coalesce(e.to_state, '')
                FROM command_events e JOIN commands c ON c.id = e.command_id
                WHERE lower(c.org_id) = '\(org)' ORDER BY e.command_id, e.id
                """)
            await db.close()
            return try parse(commandRows: commands, eventRows: events)
        }
    }
}

/// Runs async work from a synchronous test (the test thread is not on the cooperative pool).
/// Written by the task, read after the semaphore: the semaphore orders the two.
private final class BlockingResult<T>: @unchecked Sendable { var result: Result<T, Error>? }

private func blocking<T>(_ body: @escaping () async throws -> T) throws -> T {
    let box = BlockingResult<T>(), semaphore = DispatchSemaphore(value: 0)
    nonisolated(unsafe) let work = body
    Task.detached {
        do { box.result = .success(try await work()) } catch { box.result = .failure(error) }
        semaphore.signal()
    }
    semaphore.wait()
    return try box.result!.get()
}

// MARK: - the invariant

struct SoakChecker {
    static let terminal: Set<String> = ["succeeded", "failed", "rejected", "canceled", "expired", "dead_lettered"]
    static let initial: Set<String> = ["pending_approval", "queued"]
    /// Event names that record a device's result (besides the transition into succeeded/failed).
    static let resultEventNames: Set<String> = ["result", "result_recorded", "completed", "finished"]

    let report: SoakReport
    let records: SoakRecords

    func check() -> [String] {
        var failures: [String] = []
        func fail(_ s: String) { failures.append(s) }

        // 1. What the driver saw from the outside.
        for v in report.violations {
            fail("driver: \(v["kind"] ?? "?") \(v["command_id"] ?? "") \(v["detail"] ?? "")")
        }

        // 2. Every accepted proposal exists exactly once; nothing exists that was not proposed.
        var proposalsByNonce: [String: [String: Any]] = [:]
        for p in report.proposals { if let n = p["nonce"] as? String { proposalsByNonce[n] = p } }
        var rowsByNonce: [String: [SoakRecords.Command]] = [:]
        var rowsByID: [String: SoakRecords.Command] = [:]
        var keys: [String: String] = [:]
        for row in records.commands {
            if rowsByID[row.id] != nil { fail("records: command \(row.id) appears twice in the records") }
            rowsByID[row.id] = row
            if let key = row.idempotencyKey {
                let k = row.sessionID + "/" + key
                if let other = keys[k] { fail("records: idempotency key \(key) of session \(row.sessionID) on two commands: \(other), \(row.id)") }
                keys[k] = row.id
            }
            guard let nonce = row.nonce else {
                fail("records: command \(row.id) (\(row.kind)) was not proposed by the driver (no nonce in its args)")
                continue
            }
            rowsByNonce[nonce, default: []].append(row)
        }
        var uncertainCreated = 0, accepted = 0
        for (nonce, rows) in rowsByNonce {
            if rows.count > 1 { fail("records: one proposal (nonce \(nonce)) created \(rows.count) commands: \(rows.map(\.id))") }
            guard let p = proposalsByNonce[nonce] else {
                fail("records: commands \(rows.map(\.id)) carry nonce \(nonce) that the driver never sent")
                continue
            }
            switch p["outcome"] as? String {
            case "accepted":
                if let id = p["id"] as? String, rows.first?.id != id.lowercased() {
                    fail("records: proposal \(nonce) was answered with id \(id) but the record is \(rows.map(\.id))")
                }
            case "uncertain":
                uncertainCreated += 1
            default:
                fail("records: command \(rows.map(\.id)) exists though its proposal was refused: \(p)")
            }
        }
        for p in report.proposals where p["outcome"] as? String == "accepted" {
            accepted += 1
            guard let id = (p["id"] as? String)?.lowercased() else { fail("records: accepted proposal without id: \(p)"); continue }
            if rowsByID[id] == nil { fail("records: command \(id) was accepted (\(p["status"] ?? "?")) but is not in the records") }
        }
        if records.commands.count != accepted + uncertainCreated {
            fail("records: \(records.commands.count) commands in the records, \(accepted) accepted + \(uncertainCreated) whose answer was lost")
        }

        // 3. Each command: terminal, exactly one terminal transition, a consistent event chain.
        var eventsByCommand: [String: [SoakRecords.Event]] = [:]
        for e in records.events { eventsByCommand[e.commandID, default: []].append(e) }
        for row in records.commands {
            if !Self.terminal.contains(row.state) { fail("records: command \(row.id) is still \(row.state) after the soak settled") }
            if row.attempts > row.maxAttempts || row.attempts < 0 { fail("records: command \(row.id): attempts \(row.attempts) of \(row.maxAttempts)") }
            let events = eventsByCommand[row.id] ?? []
            // The event log (command_events): one transition into a terminal state and none out,
            // the first event creates the command, each event starts from the state the previous
            // one left (its from_state), at most one result.
            let trail = events.map { "\($0.event)(\($0.from ?? "-")→\($0.to ?? "-"))" }.joined(separator: " ")
            guard !events.isEmpty else { fail("events: command \(row.id) (\(row.state)) has no events"); continue }
            let intoTerminal = events.filter { e in e.to.map { Self.terminal.contains($0) } == true && e.from != e.to }
            if intoTerminal.count != 1 {
                fail("events: command \(row.id): \(intoTerminal.count) transitions into a terminal state: \(trail)")
            } else if intoTerminal[0].to != row.state {
                fail("events: command \(row.id): the record is \(row.state) but its events ended it \(intoTerminal[0].to ?? "-"): \(trail)")
            }
            if let first = events.first(where: { $0.to != nil }), !Self.initial.contains(first.to!) {
                fail("events: command \(row.id): its first state event goes to \(first.to!): \(trail)")
            }
            var previous: String?
            var ended = false
            for e in events {
                guard let to = e.to else { continue }
                if ended && to != row.state { fail("events: command \(row.id): a transition out of its terminal state: \(trail)"); break }
                if let from = e.from, let previous, from != previous {
                    fail("events: command \(row.id): event \(e.event) (#\(e.seq)) from \(from) but the previous event left it \(previous): \(trail)")
                    break
                }
                previous = to
                if Self.terminal.contains(to) { ended = true }
            }
            let results = events.filter { Self.resultEventNames.contains($0.event) }
            if results.count > 1 { fail("events: command \(row.id): \(results.count) result events: \(trail)") }
        }

        // 4. What the devices and the operator were told agrees with the records.
        let commands = report.commands
        for (id, c) in commands {
            let deliveries = c["deliveries"] as? [[String: Any]] ?? []
            guard let row = rowsByID[id.lowercased()] else {
                if !deliveries.isEmpty { fail("agreement: command \(id) was delivered but is not in the records") }
                continue
            }
            let okResults = c["results_ok"] as? [[String: Any]] ?? []
            let maybeResults = (c["results_maybe"] as? [[String: Any]] ?? [])
                + (c["results_refused"] as? [[String: Any]] ?? []).filter { $0["maybe"] as? Bool == true }
            let leases = Set(okResults.compactMap { $0["lease"] as? String })
            if leases.count > 1 { fail("agreement: command \(id): results accepted on \(leases.count) different leases: \(okResults)") }
            if let r = okResults.first {
                if r["status"] as? String != row.state { fail("agreement: command \(id): a \(r["status"] ?? "?") result was accepted but the record is \(row.state)") }
                if let code = r["exit_code"] as? Int, row.exitCode != code {
                    fail("agreement: command \(id): accepted exit code \(code), recorded \(row.exitCode.map(String.init) ?? "null")")
                }
            }
            if row.state == "succeeded" || row.state == "failed" {
                let known = okResults.contains { $0["status"] as? String == row.state } || maybeResults.contains { $0["status"] as? String == row.state }
                if !known { fail("agreement: command \(id) is \(row.state) but no device had such a result accepted (results \(okResults), unknown \(maybeResults))") }
            }
            let cancel = c["cancel"] as? [String: Any]
            let closed = report.closedSessions.contains(row.sessionID) || report.closedSessions.contains(c["session_id"] as? String ?? "")
            if cancel?["outcome"] as? String == "ok" && row.state != "canceled" {
                fail("agreement: command \(id): cancel answered 200 but the record is \(row.state)")
            }
            if row.state == "canceled" && cancel == nil && !closed {
                fail("agreement: command \(id) is canceled but the operator neither canceled it nor closed its session")
            }
            let decision = c["decision"] as? [String: Any]
            if row.state == "rejected" && decision?["op"] as? String != "reject" { fail("agreement: command \(id) is rejected but was not rejected (decision \(decision ?? [:]))") }
            if decision?["op"] as? String == "reject" && decision?["outcome"] as? String == "ok" && row.state != "rejected" {
                fail("agreement: command \(id): reject answered 200 but the record is \(row.state)")
            }
            if row.state == "dead_lettered" && row.attempts != row.maxAttempts {
                fail("agreement: command \(id) is dead-lettered after \(row.attempts) of \(row.maxAttempts) attempts")
            }
            let maxSeen = deliveries.compactMap { $0["attempt"] as? Int }.max() ?? 0
            if maxSeen > row.attempts { fail("agreement: command \(id): a device saw attempt \(maxSeen), the record counts \(row.attempts)") }
            if maxSeen > row.maxAttempts { fail("agreement: command \(id): delivered as attempt \(maxSeen) of max \(row.maxAttempts)") }
            if let needs = c["needs_approval"] as? Bool, needs != row.needsApproval {
                fail("agreement: command \(id): needs_approval \(row.needsApproval) in the record, \(needs) for its kind")
            }
            if let api = c["api_state"] as? String, api != row.state { fail("agreement: command \(id): the API says \(api), the record \(row.state)") }
        }
        return failures
    }

    static func summary(report: SoakReport, records: SoakRecords) -> String {
        var byState: [String: Int] = [:]
        for c in records.commands { byState[c.state, default: 0] += 1 }
        let deliveries = report.commands.values.reduce(0) { $0 + ((($1["deliveries"] as? [Any])?.count) ?? 0) }
        let redeliveries = report.commands.values.reduce(0) { acc, c in
            acc + ((c["deliveries"] as? [[String: Any]] ?? []).filter { ($0["attempt"] as? Int ?? 0) > 1 }.count)
        }
        let results = report.commands.values.reduce(0) { $0 + ((($1["results_ok"] as? [Any])?.count) ?? 0) }
        var eventNames: [String: Int] = [:]
        for e in records.events { eventNames[e.event, default: 0] += 1 }
        let stats = report.stats.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "seed \(report.seed): \(records.commands.count) commands (\(byState.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))), "
            + "\(deliveries) deliveries, \(redeliveries) redeliveries, \(results) results accepted, \(records.events.count) events "
            + "(\(eventNames.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))); driver: \(stats)"
    }
}
