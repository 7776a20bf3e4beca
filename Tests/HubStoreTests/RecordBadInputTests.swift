import Foundation
import HubStore
import Testing

/// `RecordStore` conformance, part 4: hostile and malformed input, on both backends. Text is
/// compared byte for byte (Swift's `==` would call canonically equivalent strings equal).
@Suite("RecordStore conformance: bad input")
struct RecordBadInputTests {
    /// Strings that break naive SQL building, LIKE patterns, placeholders, or normalization.
    static let tricky: [String] = [
        "'; DROP TABLE devices; --", "\"", "\\", "%", "_", "$1", "?", "?1", ":name", "' OR '1'='1", "\\x00ff", "a\nb\r\tc",
        "Ünïcødé e\u{301} \u{212B}", "🚀👩‍👩‍👧‍👦🏳️‍🌈", "\u{FEFF}\u{200B}\u{2028}", "{\"not\": \"json\"}", "NULL", "\u{7F}\u{1}",
    ]

    static func bytes(_ s: String?) -> [UInt8]? { s.map { Array($0.utf8) } }

    @Test(arguments: Backend.recordBackends)
    func trickyTextRoundTripsInEveryField(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            for (i, t) in Self.tricky.enumerated() {
                let json = try String(decoding: JSONSerialization.data(withJSONObject: ["k": t, t: [t]], options: [.sortedKeys]), as: UTF8.self)
                let org = Org(name: t, slug: "org-\(i)", autoApprovedKinds: [t, "plain"])
                try await store.insertOrg(org)
                let o = try #require(try await store.org(id: org.id))
                #expect(Self.bytes(o.name) == Self.bytes(t))
                #expect(o.autoApprovedKinds.map { Array($0.utf8) } == [Array(t.utf8), Array("plain".utf8)])

                let device = Device(orgID: org.id, name: t, agentVersion: t, metadata: json)
                try await store.insertDevice(device)
                let d = try #require(try await store.device(id: device.id))
                #expect(Self.bytes(d.name) == Self.bytes(t) && Self.bytes(d.agentVersion) == Self.bytes(t))
                #expect(canonicalJSON(d.metadata) == canonicalJSON(json))
                // The cursor takes the same text.
                #expect(try await store.devices(orgID: org.id, state: nil, after: (t, UUID(uuidString: "00000000-0000-0000-0000-000000000000")!), limit: 10).map(\.id) == [device.id])

                let session = DiagnosticSession(orgID: org.id, deviceID: device.id, requestedBy: UUID(), reason: t, state: .rejected, decidedBy: UUID(), decisionNote: t)
                try await store.insertSession(session)
                let s = try #require(try await store.session(id: session.id))
                #expect(Self.bytes(s.reason) == Self.bytes(t) && Self.bytes(s.decisionNote) == Self.bytes(t))

                let command = CommandRecord(orgID: org.id, sessionID: session.id, deviceID: device.id, kind: t, arguments: json,
                                            proposedBy: t, expiresAt: Date().addingTimeInterval(60), outputSummary: t, result: json)
                let event = CommandEvent(commandID: command.id, event: String(t.unicodeScalars.prefix(64)), actor: t, detail: json)
                _ = try await store.insertCommand(command, event: event)
                let c = try #require(try await store.command(id: command.id))
                #expect(Self.bytes(c.kind) == Self.bytes(t) && Self.bytes(c.proposedBy) == Self.bytes(t) && Self.bytes(c.outputSummary) == Self.bytes(t))
                #expect(canonicalJSON(c.arguments) == canonicalJSON(json) && canonicalJSON(c.result ?? "") == canonicalJSON(json))
                let e = try #require(try await store.commandEvents(commandID: command.id).first)
                #expect(Self.bytes(e.event) == Self.bytes(event.event) && Self.bytes(e.actor) == Self.bytes(t))
                #expect(canonicalJSON(e.detail) == canonicalJSON(json))

                #expect(try await store.appendLogLines([ExecutionLogLine(commandID: command.id, seq: 0, stream: .stdout, line: t)]) == 1)
                #expect(try await store.logLines(commandID: command.id, afterSeq: -1, limit: 1).map { Array($0.line.utf8) } == [Array(t.utf8)])

                let audit = try await store.appendAudit(AuditEntry(orgID: org.id, actorType: .apiKey, actorID: t, action: t, targetType: t, targetID: t, requestID: t, detail: json))
                let a = try #require(try await store.audit(orgID: org.id, beforeID: nil, limit: 1).first)
                #expect(a.id == audit.id)
                for field in [a.actorID, a.action, a.targetType, a.targetID, a.requestID] { #expect(Self.bytes(field) == Self.bytes(t)) }
                #expect(canonicalJSON(a.detail) == canonicalJSON(json))
            }
        }
    }

    @Test(arguments: Backend.recordBackends)
    func lengthsAtTheLimitRoundTripAndOverTheLimitAreRefused(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            // Limits count characters (Unicode scalars), not bytes: 4-byte emoji at the limit fit.
            let name200 = String(repeating: "🚀", count: 200)
            let org = Org(name: name200, slug: String(repeating: "a", count: 63))
            try await store.insertOrg(org)
            #expect(try await store.org(slug: String(repeating: "a", count: 63))?.name == name200)
            let device = Device(orgID: f.org.id, name: name200)
            try await store.insertDevice(device)
            #expect(try await store.device(id: device.id)?.name == name200)
            let reason = String(repeating: "'", count: 2000)
            let session = DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: reason)
            try await store.insertSession(session)
            #expect(try await store.session(id: session.id)?.reason == reason)
            var command = f.command(kind: String(repeating: "%", count: 100))
            command.outputSummary = String(repeating: "é", count: 65_536)
            let c = try await store.insertCommand(command, event: CommandEvent(commandID: command.id, event: String(repeating: "_", count: 64)))
            #expect(c.kind == command.kind && c.outputSummary == command.outputSummary)
            #expect(try await store.commandEvents(commandID: command.id).first?.event == String(repeating: "_", count: 64))
            let audit = try await store.appendAudit(AuditEntry(actorType: .system, action: String(repeating: "\\", count: 100)))
            #expect(audit.action == String(repeating: "\\", count: 100))

            // One over (and empty where the minimum is 1): refused, nothing written.
            let overs: [(String, () async throws -> Void)] = [
                ("org name", { try await store.insertOrg(Org(name: name200 + "x", slug: "over")) }),
                ("empty org name", { try await store.insertOrg(Org(name: "", slug: "over")) }),
                ("slug 64", { try await store.insertOrg(Org(name: "x", slug: String(repeating: "a", count: 64))) }),
                ("slug leading dash", { try await store.insertOrg(Org(name: "x", slug: "-over")) }),
                ("slug upper", { try await store.insertOrg(Org(name: "x", slug: "Over")) }),
                ("device name", { try await store.insertDevice(Device(orgID: f.org.id, name: name200 + "x")) }),
                ("empty device name", { try await store.insertDevice(Device(orgID: f.org.id, name: "")) }),
                ("reason", { try await store.insertSession(DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: reason + "x")) }),
                ("kind", { _ = try await store.insertCommand(f.command(kind: String(repeating: "%", count: 101)), event: nil) }),
                ("outputSummary", { var c = f.command(); c.outputSummary = String(repeating: "é", count: 65_537); _ = try await store.insertCommand(c, event: nil) }),
                ("event", { _ = try await store.appendCommandEvent(CommandEvent(commandID: c.id, event: String(repeating: "_", count: 65))) }),
                ("action", { try await store.appendAudit(AuditEntry(actorType: .system, action: String(repeating: "\\", count: 101))) }),
                ("device rename", { _ = try await store.updateDevice(id: device.id, expected: nil, change: DeviceChange(name: name200 + "x")) }),
                ("summary update", { _ = try await store.updateCommand(id: c.id, expected: nil, change: CommandChange(outputSummary: String(repeating: "é", count: 65_537)), event: nil) }),
            ]
            for (what, body) in overs {
                let e = await storeError(body)
                #expect(e?.isInvalidArgument == true, "\(what): \(String(describing: e))")
            }
            #expect(try await store.org(slug: "over") == nil)
            #expect(try await store.devices(orgID: f.org.id, state: nil, after: nil, limit: 100).count == 2)
            #expect(try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: nil, limit: 100).count == 2)
            #expect(try await store.commands(sessionID: f.session.id, states: nil, afterSeq: 0, limit: 100).count == 1)
            #expect(try await store.commandEvents(commandID: c.id).count == 1)
            #expect(try await store.audit(orgID: nil, beforeID: nil, limit: 100).count == 1)
            #expect(try await store.device(id: device.id)?.name == name200)
            #expect(try await store.command(id: c.id)?.outputSummary == command.outputSummary)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func nulInAnyTextFieldIsRefusedWithNothingWritten(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let nul = "a\u{0}b"
            let c = try await store.insertCommand(f.command(), event: nil)
            let cases: [(String, () async throws -> Void)] = [
                ("org name", { try await store.insertOrg(Org(name: nul, slug: "n1")) }),
                ("org kinds", { try await store.insertOrg(Org(name: "x", slug: "n2", autoApprovedKinds: [nul])) }),
                ("device name", { try await store.insertDevice(Device(orgID: f.org.id, name: nul)) }),
                ("agentVersion", { try await store.insertDevice(Device(orgID: f.org.id, name: "n", agentVersion: nul)) }),
                ("metadata raw", { try await store.insertDevice(Device(orgID: f.org.id, name: "n", metadata: "{\"a\": \"\u{0}\"}")) }),
                ("metadata escaped", { try await store.insertDevice(Device(orgID: f.org.id, name: "n", metadata: #"{"a": "\u0000"}"#)) }),
                ("metadata key", { try await store.insertDevice(Device(orgID: f.org.id, name: "n", metadata: #"{"\u0000": 1}"#)) }),
                ("reason", { try await store.insertSession(DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: nul)) }),
                ("decisionNote", { try await store.insertSession(DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: "r", decisionNote: nul)) }),
                ("kind", { _ = try await store.insertCommand(f.command(kind: nul), event: nil) }),
                ("proposedBy", { var x = f.command(); x.proposedBy = nul; _ = try await store.insertCommand(x, event: nil) }),
                ("outputSummary", { var x = f.command(); x.outputSummary = nul; _ = try await store.insertCommand(x, event: nil) }),
                ("arguments", { var x = f.command(); x.arguments = #"["\u0000"]"#; _ = try await store.insertCommand(x, event: nil) }),
                ("event", { let x = f.command(); _ = try await store.insertCommand(x, event: CommandEvent(commandID: x.id, event: nul)) }),
                ("actor", { _ = try await store.appendCommandEvent(CommandEvent(commandID: c.id, event: "e", actor: nul)) }),
                ("log line", { try await store.appendLogLines([ExecutionLogLine(commandID: c.id, seq: 0, stream: .stdout, line: "ok"), ExecutionLogLine(commandID: c.id, seq: 1, stream: .stdout, line: nul)]) }),
                ("audit actorID", { try await store.appendAudit(AuditEntry(actorType: .user, actorID: nul, action: "a")) }),
                ("audit action", { try await store.appendAudit(AuditEntry(actorType: .user, action: nul)) }),
                ("audit targetType", { try await store.appendAudit(AuditEntry(actorType: .user, action: "a", targetType: nul)) }),
                ("audit targetID", { try await store.appendAudit(AuditEntry(actorType: .user, action: "a", targetID: nul)) }),
                ("audit requestID", { try await store.appendAudit(AuditEntry(actorType: .user, action: "a", requestID: nul)) }),
                ("audit ip", { try await store.appendAudit(AuditEntry(actorType: .user, action: "a", ip: "127.0.0.1\u{0}")) }),
                ("device update", { _ = try await store.updateDevice(id: f.device.id, expected: nil, change: DeviceChange(agentVersion: nul)) }),
                ("session update", { _ = try await store.updateSession(id: f.session.id, expected: nil, change: SessionChange(decisionNote: nul)) }),
                ("command update", { _ = try await store.updateCommand(id: c.id, expected: nil, change: CommandChange(outputSummary: nul), event: nil) }),
                ("cursor", { _ = try await store.devices(orgID: f.org.id, state: nil, after: (nul, UUID()), limit: 1) }),
            ]
            for (what, body) in cases {
                let e = await storeError(body)
                #expect(e?.isInvalidArgument == true, "\(what): \(String(describing: e))")
            }
            #expect(try await store.org(slug: "n1") == nil)
            #expect(try await store.org(slug: "n2") == nil)
            #expect(try await store.devices(orgID: f.org.id, state: nil, after: nil, limit: 100).map(\.id) == [f.device.id])
            #expect(try await store.device(id: f.device.id) == f.device)
            #expect(try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: nil, limit: 100) == [f.session])
            #expect(try await store.commands(sessionID: f.session.id, states: nil, afterSeq: 0, limit: 100).map(\.id) == [c.id])
            #expect(try await store.command(id: c.id)?.canonical == c.canonical)
            #expect(try await store.commandEvents(commandID: c.id).isEmpty)
            #expect(try await store.logLines(commandID: c.id, afterSeq: -1, limit: 100).isEmpty, "a batch with one bad line is refused whole")
            #expect(try await store.audit(orgID: nil, beforeID: nil, limit: 100).isEmpty)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func invalidJSONAndReferencesAreRefused(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let c = try await store.insertCommand(f.command(), event: nil)
            let cases: [(String, () async throws -> Void)] = [
                ("metadata not JSON", { try await store.insertDevice(Device(orgID: f.org.id, name: "n", metadata: "not json")) }),
                ("metadata array", { try await store.insertDevice(Device(orgID: f.org.id, name: "n", metadata: "[1]")) }),
                ("metadata truncated", { try await store.insertDevice(Device(orgID: f.org.id, name: "n", metadata: #"{"a": 1"#)) }),
                ("metadata update", { _ = try await store.updateDevice(id: f.device.id, expected: nil, change: DeviceChange(metadata: "7")) }),
                ("arguments", { var x = f.command(); x.arguments = "{'a': 1}"; _ = try await store.insertCommand(x, event: nil) }),
                ("arguments empty", { var x = f.command(); x.arguments = ""; _ = try await store.insertCommand(x, event: nil) }),
                ("lone surrogate", { var x = f.command(); x.arguments = #""\ud800""#; _ = try await store.insertCommand(x, event: nil) }),
                ("result", { _ = try await store.updateCommand(id: c.id, expected: nil, change: CommandChange(result: "{,}"), event: nil) }),
                ("event detail", { _ = try await store.appendCommandEvent(CommandEvent(commandID: c.id, event: "e", detail: "nope")) }),
                ("audit detail", { try await store.appendAudit(AuditEntry(actorType: .user, action: "a", detail: "[")) }),
                ("unknown org (device)", { try await store.insertDevice(Device(orgID: UUID(), name: "n")) }),
                ("unknown org (session)", { try await store.insertSession(DiagnosticSession(orgID: UUID(), deviceID: f.device.id, requestedBy: UUID(), reason: "r")) }),
                ("unknown device (command)", { var x = f.command(); x.deviceID = UUID(); _ = try await store.insertCommand(x, event: nil) }),
                ("active without secret", { try await store.insertDevice(Device(orgID: f.org.id, name: "n", state: .active)) }),
                ("expiry before creation", { try await store.insertActivationCode(ActivationCode(orgID: f.org.id, deviceID: f.device.id, codeHash: [1], expiresAt: at(baseMillis), createdAt: at(baseMillis))) }),
                ("empty hash", { try await store.insertActivationCode(ActivationCode(orgID: f.org.id, deviceID: f.device.id, codeHash: [], expiresAt: Date().addingTimeInterval(60))) }),
                ("maxAttempts", { var x = f.command(); x.maxAttempts = 101; _ = try await store.insertCommand(x, event: nil) }),
                ("exitCode", { _ = try await store.updateCommand(id: c.id, expected: nil, change: CommandChange(exitCode: Int(Int32.max) + 1), event: nil) }),
            ]
            for (what, body) in cases {
                let e = await storeError(body)
                #expect(e?.isInvalidArgument == true, "\(what): \(String(describing: e))")
            }
            #expect(try await store.devices(orgID: f.org.id, state: nil, after: nil, limit: 100) == [f.device])
            #expect(try await store.commands(sessionID: f.session.id, states: nil, afterSeq: 0, limit: 100).map(\.canonical) == [c.canonical])
            #expect(try await store.commandEvents(commandID: c.id).isEmpty)
            #expect(try await store.audit(orgID: nil, beforeID: nil, limit: 100).isEmpty)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func bytesRoundTripEveryValue(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let all = (0...255).map(UInt8.init) + [0, 0, 0]
            let device = Device(orgID: f.org.id, name: "bytes", state: .active, secretHash: all)
            try await store.insertDevice(device)
            #expect(try await store.device(id: device.id)?.secretHash == all)
            let nuls: [UInt8] = [0, 0, 0, 0]
            guard case .updated(let d) = try await store.updateDevice(id: device.id, expected: [.active], change: DeviceChange(secretHash: nuls)) else {
                Issue.record("expected updated"); return
            }
            #expect(d.secretHash == nuls)

            let codeHash = all.reversed().map { $0 }
            try await store.insertActivationCode(ActivationCode(orgID: f.org.id, deviceID: f.device.id, codeHash: codeHash, expiresAt: Date().addingTimeInterval(60)))
            // A hash differing only after a NUL is a different hash.
            #expect(try await store.redeemActivationCode(codeHash: Array(codeHash.dropLast()) + [1], now: Date()) == .notFound)
            guard case .redeemed(let code) = try await store.redeemActivationCode(codeHash: codeHash, now: Date()) else {
                Issue.record("expected redeemed"); return
            }
            #expect(code.codeHash == codeHash)
        }
    }

    /// An independent client (psql) reads exactly the bytes our PostgreSQL store wrote.
    @Test
    func psqlReadsWhatThePostgresStoreWrote() async throws {
        try await withPostgresRecordStore { store, psql in
            let f = try await RecordFixture.make(store)
            let name = "'; DROP TABLE devices; -- \"\\ %_ $1 ? 🚀 e\u{301}"
            let device = Device(orgID: f.org.id, name: name, state: .active, secretHash: [0, 1, 0xff, 0], metadata: #"{"q": "'\"\\"}"#)
            try await store.insertDevice(device)
            let id = device.id.uuidString.lowercased()
            let hexName = try psql("SELECT encode(convert_to(name, 'UTF8'), 'hex') FROM devicehub.devices WHERE id = '\(id)'")
            #expect(hexName == name.utf8.map { String(format: "%02x", $0) }.joined())
            #expect(try psql("SELECT name FROM devicehub.devices WHERE id = '\(id)'") == name)
            #expect(try psql("SELECT encode(secret_hash, 'hex') FROM devicehub.devices WHERE id = '\(id)'") == "0001ff00")
            #expect(try psql("SELECT metadata->>'q' FROM devicehub.devices WHERE id = '\(id)'") == "'\"\\")
            #expect(try psql("SELECT count(*) FROM devicehub.devices") == "2")
            #expect(try psql("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM devicehub.devices WHERE id = '\(f.device.id.uuidString.lowercased())'")
                    == "2024-05-01T12:00:00.000000")
        }
    }
}
