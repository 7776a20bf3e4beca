import Foundation
import HubStore
import Testing

/// `RecordStore` conformance, part 3: commands, their events and execution logs, on both backends.
@Suite("RecordStore conformance: commands, events, logs")
struct RecordCommandConformanceTests {
    @Test(arguments: Backend.recordBackends)
    func commandRoundTripsEveryField(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let full = CommandRecord(orgID: f.org.id, sessionID: f.session.id, deviceID: f.device.id, kind: "shell",
                                     arguments: #"["ls", {"deep": [1, 2.5, true, null]}]"#, priority: .critical, state: .claimed,
                                     needsApproval: false, proposedBy: "key-123", decidedBy: UUID(), decidedAt: at(baseMillis + 1),
                                     ttlSeconds: 120, expiresAt: at(baseMillis + 120_000), maxAttempts: 7, visibilityTimeoutSeconds: 43_200,
                                     attempts: 2, leaseToken: UUID(), leaseExpiresAt: at(baseMillis + 2), leasedAt: at(baseMillis + 3),
                                     exitCode: -1, outputSummary: "partial", result: #"{"ok": false}"#, finishedAt: at(baseMillis + 4),
                                     createdAt: at(baseMillis + 5), updatedAt: at(baseMillis + 6))
            let inserted = try await store.insertCommand(full, event: nil)
            #expect(inserted.seq > 0)
            var expected = full
            expected.seq = inserted.seq
            #expect(inserted.canonical == expected.canonical)
            #expect(try await store.command(id: full.id)?.canonical == expected.canonical)
            #expect(try await store.command(id: UUID()) == nil)
            // A scalar JSON value is fine for arguments and result.
            var scalar = f.command()
            scalar.arguments = "\"just a string\""
            scalar.result = "42"
            let s = try await store.insertCommand(scalar, event: nil)
            #expect(s.arguments == "\"just a string\"")
            #expect(s.result == "42")
            #expect(s.seq > inserted.seq)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func commandsBySeqAndUnfinished(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let states: [CommandState] = [.queued, .pendingApproval, .claimed, .succeeded, .queued, .failed, .deadLettered, .canceled]
            var inserted: [CommandRecord] = []
            for (i, state) in states.enumerated() {
                var c = f.command(state: state, offset: Int64(i))
                if state == .claimed { c.leaseToken = UUID(); c.leaseExpiresAt = at(baseMillis + 1000) }
                inserted.append(try await store.insertCommand(c, event: nil))
            }
            #expect(inserted.map(\.seq) == inserted.map(\.seq).sorted())
            #expect(Set(inserted.map(\.seq)).count == inserted.count)
            let page1 = try await store.commands(sessionID: f.session.id, states: nil, afterSeq: 0, limit: 3)
            #expect(page1.map(\.id) == inserted.prefix(3).map(\.id))
            let page2 = try await store.commands(sessionID: f.session.id, states: nil, afterSeq: page1.last!.seq, limit: 100)
            #expect(page2.map(\.id) == inserted.dropFirst(3).map(\.id))
            #expect(try await store.commands(sessionID: UUID(), states: nil, afterSeq: 0, limit: 10).isEmpty)

            let unfinished = try await store.unfinishedCommands(afterSeq: 0, limit: 10)
            #expect(unfinished.map(\.id) == [inserted[0], inserted[2], inserted[4]].map(\.id))
            #expect(try await store.unfinishedCommands(afterSeq: inserted[0].seq, limit: 1).map(\.id) == [inserted[2].id])
        }
    }

    @Test(arguments: Backend.recordBackends)
    func insertCommandWithEvent(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let c = f.command()
            let event = CommandEvent(commandID: c.id, event: "proposed", toState: .pendingApproval, actor: "user-1", detail: #"{"k": "v"}"#, at: at(baseMillis))
            _ = try await store.insertCommand(c, event: event)
            let events = try await store.commandEvents(commandID: c.id)
            #expect(events.count == 1)
            var expected = event
            expected.id = try #require(events.first?.id)
            #expect(events.first?.canonical == expected.canonical)

            // An event of another command is refused, and nothing is written.
            let other = f.command()
            let e = await storeError { _ = try await store.insertCommand(other, event: CommandEvent(commandID: UUID(), event: "x")) }
            #expect(e?.isInvalidArgument == true)
            #expect(try await store.command(id: other.id) == nil)
            // An unknown session is invalid.
            var orphan = f.command()
            orphan.sessionID = UUID()
            let e2 = await storeError { _ = try await store.insertCommand(orphan, event: nil) }
            #expect(e2?.isInvalidArgument == true)
            // A duplicate id is a conflict, and its event is not written.
            let e3 = await storeError { _ = try await store.insertCommand(c, event: CommandEvent(commandID: c.id, event: "again")) }
            #expect(e3?.isConflict == true, "\(String(describing: e3))")
            #expect(try await store.commandEvents(commandID: c.id).count == 1)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func conditionalCommandUpdateAppendsEventOnlyWhenUpdated(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let c = try await store.insertCommand(f.command(state: .queued), event: nil)
            let token = UUID()
            let claim = CommandChange(state: .claimed, attempts: 1, lease: .set(token: token, expiresAt: at(baseMillis + 60_000), leasedAt: at(baseMillis + 1)),
                                      updatedAt: at(baseMillis + 1))
            let claimed = CommandEvent(commandID: c.id, event: "claimed", fromState: .queued, toState: .claimed, at: at(baseMillis + 1))
            guard case .updated(let u) = try await store.updateCommand(id: c.id, expected: [.queued], change: claim, event: claimed) else {
                Issue.record("expected updated"); return
            }
            #expect(u.state == .claimed && u.attempts == 1 && u.leaseToken == token)
            #expect(u.leaseExpiresAt == at(baseMillis + 60_000) && u.leasedAt == at(baseMillis + 1))
            #expect(u.updatedAt == at(baseMillis + 1))

            // Second claim: conflict, no event.
            let again = try await store.updateCommand(id: c.id, expected: [.queued], change: claim, event: claimed)
            #expect(again == .conflict(current: u))
            #expect(try await store.updateCommand(id: UUID(), expected: [.queued], change: claim, event: nil) == .notFound)
            #expect(try await store.commandEvents(commandID: c.id).map(\.event) == ["claimed"])

            let finish = CommandChange(state: .succeeded, lease: .clear, exitCode: 0, outputSummary: "done", result: #"{"lines": 3}"#,
                                       finishedAt: at(baseMillis + 2), updatedAt: at(baseMillis + 2))
            guard case .updated(let done) = try await store.updateCommand(id: c.id, expected: [.claimed], change: finish,
                                                                          event: CommandEvent(commandID: c.id, event: "result", fromState: .claimed, toState: .succeeded, at: at(baseMillis + 2))) else {
                Issue.record("expected updated"); return
            }
            #expect(done.leaseToken == nil && done.leaseExpiresAt == nil && done.leasedAt == nil)
            #expect(done.exitCode == 0 && done.outputSummary == "done" && canonicalJSON(done.result ?? "") == #"{"lines":3}"#)
            #expect(done.finishedAt == at(baseMillis + 2))
            let events = try await store.commandEvents(commandID: c.id)
            #expect(events.map(\.event) == ["claimed", "result"])
            #expect(events[0].id < events[1].id)
            #expect(events[1].fromState == .claimed && events[1].toState == .succeeded)

            // A change that breaks a schema rule (claimed without a lease) is invalid, and unwritten.
            let bad = await storeError { _ = try await store.updateCommand(id: c.id, expected: nil, change: CommandChange(state: .claimed), event: CommandEvent(commandID: c.id, event: "bad")) }
            #expect(bad?.isInvalidArgument == true, "\(String(describing: bad))")
            #expect(try await store.command(id: c.id) == done)
            #expect(try await store.commandEvents(commandID: c.id).count == 2)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func appendCommandEventAssignsIncreasingIDs(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let c = try await store.insertCommand(f.command(), event: nil)
            let a = try await store.appendCommandEvent(CommandEvent(commandID: c.id, event: "lease_lapsed", detail: "{}", at: at(baseMillis)))
            let b = try await store.appendCommandEvent(CommandEvent(commandID: c.id, event: "dead_lettered", fromState: .claimed, toState: .deadLettered,
                                                                     actor: "system", detail: #"{"attempts": 3}"#, at: at(baseMillis + 1)))
            #expect(b.id > a.id)
            #expect(try await store.commandEvents(commandID: c.id).map(\.canonical) == [a.canonical, b.canonical])
            let orphan = await storeError { _ = try await store.appendCommandEvent(CommandEvent(commandID: UUID(), event: "x")) }
            #expect(orphan?.isInvalidArgument == true)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func logLinesIgnoreRepeatedSeq(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let c = try await store.insertCommand(f.command(), event: nil)
            let lines = (0..<5).map { ExecutionLogLine(commandID: c.id, seq: Int64($0), stream: $0 % 2 == 0 ? .stdout : .stderr, line: "line \($0) ✓", at: at(baseMillis + Int64($0))) }
            #expect(try await store.appendLogLines(Array(lines.prefix(3))) == 3)
            // Resent 1 and 2 (with other text: ignored), new 3 and 4, and 4 twice in one batch.
            var resent = Array(lines[1...4])
            resent[0].line = "changed"
            resent.append(lines[4])
            #expect(try await store.appendLogLines(resent) == 2)
            #expect(try await store.appendLogLines([]) == 0)
            #expect(try await store.logLines(commandID: c.id, afterSeq: -1, limit: 100) == lines)
            #expect(try await store.logLines(commandID: c.id, afterSeq: 1, limit: 2) == Array(lines[2...3]))
            let orphan = await storeError { try await store.appendLogLines([ExecutionLogLine(commandID: UUID(), seq: 0, stream: .stdout, line: "x")]) }
            #expect(orphan?.isInvalidArgument == true)
            let negative = await storeError { try await store.appendLogLines([ExecutionLogLine(commandID: c.id, seq: -1, stream: .stdout, line: "x")]) }
            #expect(negative?.isInvalidArgument == true)
        }
    }

    /// What the hub's `execution.log` events rest on: exactly the lines that were new, in the
    /// order given, a seq repeated within the batch once.
    @Test(arguments: Backend.recordBackends)
    func appendReportsWhichLinesWereNew(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let c = try await store.insertCommand(f.command(), event: nil)
            func line(_ seq: Int64) -> ExecutionLogLine { ExecutionLogLine(commandID: c.id, seq: seq, stream: .stdout, line: "l\(seq)", at: at(baseMillis)) }
            #expect(try await store.appendLogLinesReportingNew([line(1), line(2)]) == [1, 2])
            #expect(try await store.appendLogLinesReportingNew([line(5), line(2), line(3), line(5), line(1)]) == [5, 3])
            #expect(try await store.appendLogLinesReportingNew([line(1), line(2), line(3), line(5)]) == [])
            #expect(try await store.appendLogLinesReportingNew([]) == [])
            #expect(try await store.logLines(commandID: c.id, afterSeq: 0, limit: 10).map(\.seq) == [1, 2, 3, 5])
        }
    }
}
