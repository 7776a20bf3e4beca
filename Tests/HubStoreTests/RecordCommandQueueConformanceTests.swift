import Foundation
import HubStore
import Testing

/// `RecordStore` conformance for the command queue (issue 9), on both backends: idempotency
/// keys, conditional updates by `CommandCondition`, filtered listing, and what the queue cap,
/// the reaper and the queue metrics read.
@Suite("RecordStore conformance: command queue records")
struct RecordCommandQueueConformanceTests {
    @Test(arguments: Backend.recordBackends)
    func idempotencyKeyIsUniquePerSession(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let other = DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: "other", createdAt: at(baseMillis))
            try await store.insertSession(other)
            var first = f.command()
            first.idempotencyKey = "retry-1"
            let inserted = try await store.insertCommand(first, event: nil)
            #expect(inserted.idempotencyKey == "retry-1")
            #expect(try await store.command(id: first.id)?.idempotencyKey == "retry-1")
            #expect(try await store.command(sessionID: f.session.id, idempotencyKey: "retry-1")?.id == first.id)

            // The same key again in the session: a conflict, nothing written (nor its event).
            var duplicate = f.command()
            duplicate.idempotencyKey = "retry-1"
            let e = await storeError { _ = try await store.insertCommand(duplicate, event: CommandEvent(commandID: duplicate.id, event: "proposed")) }
            #expect(e?.isConflict == true, "\(String(describing: e))")
            #expect(try await store.command(id: duplicate.id) == nil)
            #expect(try await store.commandEvents(commandID: duplicate.id).isEmpty)
            // Keys compare exactly: another case is another key.
            var upper = f.command()
            upper.idempotencyKey = "RETRY-1"
            _ = try await store.insertCommand(upper, event: nil)
            #expect(try await store.command(sessionID: f.session.id, idempotencyKey: "RETRY-1")?.id == upper.id)
            // The same key in another session is another command.
            var elsewhere = f.command()
            elsewhere.sessionID = other.id
            elsewhere.idempotencyKey = "retry-1"
            _ = try await store.insertCommand(elsewhere, event: nil)
            #expect(try await store.command(sessionID: other.id, idempotencyKey: "retry-1")?.id == elsewhere.id)
            #expect(try await store.command(sessionID: f.session.id, idempotencyKey: "retry-1")?.id == first.id)
            // Commands without a key are not limited.
            for _ in 0..<3 { _ = try await store.insertCommand(f.command(), event: nil) }
            #expect(try await store.commands(sessionID: f.session.id, states: nil, afterSeq: 0, limit: 100).count == 5)

            // Unknown keys and keys no command can have are simply not there.
            #expect(try await store.command(sessionID: f.session.id, idempotencyKey: "retry-2") == nil)
            #expect(try await store.command(sessionID: UUID(), idempotencyKey: "retry-1") == nil)
            for unstorable in ["", String(repeating: "k", count: 129), "re\u{0}try"] {
                #expect(try await store.command(sessionID: f.session.id, idempotencyKey: unstorable) == nil)
            }
        }
    }

    @Test(arguments: Backend.recordBackends)
    func idempotencyKeyLengthAndNULAreChecked(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            // 128 characters is the limit, counted as characters (each of these is 2 UTF-8 bytes).
            var longest = f.command()
            longest.idempotencyKey = String(repeating: "é", count: 128)
            _ = try await store.insertCommand(longest, event: nil)
            #expect(try await store.command(sessionID: f.session.id, idempotencyKey: String(repeating: "é", count: 128))?.id == longest.id)
            for bad in ["", String(repeating: "é", count: 129), "a\u{0}b"] {
                var c = f.command()
                c.idempotencyKey = bad
                await expectInvalidArgument("idempotency key of \(bad.unicodeScalars.count) characters") { _ = try await store.insertCommand(c, event: nil) }
                #expect(try await store.command(id: c.id) == nil)
            }
        }
    }

    @Test(arguments: Backend.recordBackends)
    func racingInsertsWithOneKeyHaveOneWinner(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            // Several rounds, each a race of two proposals with the same key.
            for round in 0..<8 {
                let key = "race-\(round)"
                var a = f.command()
                var b = f.command()
                a.idempotencyKey = key
                b.idempotencyKey = key
                let (first, second) = (a, b)
                async let x = storeError { _ = try await store.insertCommand(first, event: CommandEvent(commandID: first.id, event: "proposed")) }
                async let y = storeError { _ = try await store.insertCommand(second, event: CommandEvent(commandID: second.id, event: "proposed")) }
                let errors = await [x, y]
                #expect(errors.filter { $0 == nil }.count == 1, "round \(round): \(errors)")
                #expect(errors.filter { $0?.isConflict == true }.count == 1, "round \(round): \(errors)")
                let winner = try #require(try await store.command(sessionID: f.session.id, idempotencyKey: key))
                let loser = winner.id == a.id ? b.id : a.id
                #expect(winner.id == (errors[0] == nil ? a.id : b.id))
                #expect(try await store.command(id: loser) == nil)
                #expect(try await store.commandEvents(commandID: loser).isEmpty)
                #expect(try await store.commandEvents(commandID: winner.id).count == 1)
            }
        }
    }

    @Test(arguments: Backend.recordBackends)
    func commandConditionChecksEveryPart(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let token = UUID()
            var claimed = f.command(state: .claimed)
            claimed.attempts = 2
            claimed.leaseToken = token
            claimed.leaseExpiresAt = at(baseMillis + 30_000)
            claimed.leasedAt = at(baseMillis)
            let c = try await store.insertCommand(claimed, event: nil)
            var tick: Int64 = 0
            /// A change that only touches updatedAt, with an event to show whether it was written.
            func touch(_ condition: CommandCondition) async throws -> RecordUpdate<CommandRecord> {
                tick += 1
                return try await store.updateCommand(id: c.id, where: condition, change: CommandChange(updatedAt: at(baseMillis + tick)),
                                                     event: CommandEvent(commandID: c.id, event: "touch-\(tick)"))
            }
            func isUpdated(_ u: RecordUpdate<CommandRecord>) -> Bool { if case .updated = u { return true } else { return false } }
            func isConflict(_ u: RecordUpdate<CommandRecord>) -> Bool { if case .conflict = u { return true } else { return false } }

            // Each part alone, failing and holding.
            #expect(isConflict(try await touch(CommandCondition(attemptsAtMost: 1))))
            #expect(isUpdated(try await touch(CommandCondition(attemptsAtMost: 2))))
            #expect(isUpdated(try await touch(CommandCondition(attemptsAtMost: 3))))
            #expect(isConflict(try await touch(CommandCondition(leaseToken: UUID()))))
            #expect(isUpdated(try await touch(CommandCondition(leaseToken: token))))
            #expect(isConflict(try await touch(CommandCondition(states: [.queued, .pendingApproval]))))
            #expect(isConflict(try await touch(CommandCondition(states: []))))
            #expect(isUpdated(try await touch(CommandCondition(states: [.queued, .claimed]))))
            // No part: any row.
            #expect(isUpdated(try await touch(CommandCondition())))
            // Together: all must hold.
            #expect(isUpdated(try await touch(CommandCondition(states: [.claimed], attemptsAtMost: 2, leaseToken: token))))
            #expect(isConflict(try await touch(CommandCondition(states: [.claimed], attemptsAtMost: 2, leaseToken: UUID()))))
            #expect(isConflict(try await touch(CommandCondition(states: [.claimed], attemptsAtMost: 1, leaseToken: token))))
            #expect(isConflict(try await touch(CommandCondition(states: [.queued], attemptsAtMost: 2, leaseToken: token))))
            // Only the matching updates wrote their events; a conflict carries the row as it is.
            #expect(try await store.commandEvents(commandID: c.id).map(\.event) == ["touch-2", "touch-3", "touch-5", "touch-8", "touch-9", "touch-10"])
            let current = try #require(try await store.command(id: c.id))
            #expect(current.updatedAt == at(baseMillis + 10))
            #expect(try await touch(CommandCondition(attemptsAtMost: 0)) == .conflict(current: current))
            #expect(try await store.updateCommand(id: UUID(), where: CommandCondition(leaseToken: token), change: CommandChange(), event: nil) == .notFound)

            // A row without a lease never matches a token condition.
            let requeue = CommandChange(state: .queued, lease: .clear, updatedAt: at(baseMillis + 100))
            guard case .updated(let queued) = try await store.updateCommand(id: c.id, where: CommandCondition(states: [.claimed], leaseToken: token),
                                                                            change: requeue, event: nil) else {
                Issue.record("expected the requeue to match"); return
            }
            #expect(queued.state == .queued && queued.leaseToken == nil)
            #expect(try await store.updateCommand(id: c.id, where: CommandCondition(leaseToken: token), change: requeue, event: nil)
                    == .conflict(current: queued))
            // The `expected:` form is the states-only condition.
            #expect(try await store.updateCommand(id: c.id, expected: [.claimed], change: requeue, event: nil) == .conflict(current: queued))
            #expect(isUpdated(try await store.updateCommand(id: c.id, expected: [.queued], change: requeue, event: nil)))
        }
    }

    @Test(arguments: Backend.recordBackends)
    func racingClaimRecordsWithOneTokenConditionHaveOneWinner(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let c = try await store.insertCommand(f.command(state: .queued), event: nil)
            // Ten nodes record a claim of the same delivery (attempt 1); only the first write
            // may pass the condition `attempts <= 0`.
            let results = try await withThrowingTaskGroup(of: RecordUpdate<CommandRecord>.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        let change = CommandChange(state: .claimed, attempts: 1,
                                                   lease: .set(token: UUID(), expiresAt: at(baseMillis + 30_000), leasedAt: at(baseMillis)))
                        return try await store.updateCommand(id: c.id, where: CommandCondition(states: [.queued, .claimed], attemptsAtMost: 0),
                                                             change: change, event: nil)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = results.compactMap { if case .updated(let r) = $0 { return r } else { return nil } }
            #expect(winners.count == 1)
            #expect(results.filter { if case .conflict = $0 { return true } else { return false } }.count == 9)
            #expect(try await store.command(id: c.id)?.leaseToken == winners.first?.leaseToken)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func commandsOfASessionFilteredByState(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let states: [CommandState] = [.queued, .pendingApproval, .succeeded, .queued, .canceled, .pendingApproval, .queued]
            var inserted: [CommandRecord] = []
            for (i, state) in states.enumerated() { inserted.append(try await store.insertCommand(f.command(state: state, offset: Int64(i)), event: nil)) }
            let all = try await store.commands(sessionID: f.session.id, states: nil, afterSeq: 0, limit: 100)
            #expect(all.map(\.id) == inserted.map(\.id))
            let queued = inserted.filter { $0.state == .queued }
            #expect(try await store.commands(sessionID: f.session.id, states: [.queued], afterSeq: 0, limit: 100).map(\.id) == queued.map(\.id))
            let open = inserted.filter { $0.state == .queued || $0.state == .pendingApproval }
            #expect(try await store.commands(sessionID: f.session.id, states: [.queued, .pendingApproval], afterSeq: 0, limit: 100).map(\.id) == open.map(\.id))
            #expect(try await store.commands(sessionID: f.session.id, states: [], afterSeq: 0, limit: 100).isEmpty)
            #expect(try await store.commands(sessionID: f.session.id, states: [.failed], afterSeq: 0, limit: 100).isEmpty)
            // Paging a filtered list by seq: every matching command once, in order.
            var paged: [CommandRecord] = []
            var after: Int64 = 0
            for _ in 0..<100 {
                let page = try await store.commands(sessionID: f.session.id, states: [.queued, .pendingApproval], afterSeq: after, limit: 2)
                if page.isEmpty { break }
                #expect(page.count <= 2)
                paged += page
                after = page.last!.seq
            }
            #expect(paged.map(\.id) == open.map(\.id))
        }
    }

    @Test(arguments: Backend.recordBackends)
    func unfinishedCommandCountPerDevice(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let second = Device(orgID: f.org.id, name: "dev-2", createdAt: at(baseMillis))
            try await store.insertDevice(second)
            let secondSession = DiagnosticSession(orgID: f.org.id, deviceID: second.id, requestedBy: UUID(), reason: "r", createdAt: at(baseMillis))
            try await store.insertSession(secondSession)
            #expect(try await store.unfinishedCommandCount(deviceID: f.device.id) == 0)
            for state in CommandState.allCases {
                var c = f.command(state: state)
                if state == .claimed { c.leaseToken = UUID(); c.leaseExpiresAt = at(baseMillis + 1_000) }
                _ = try await store.insertCommand(c, event: nil)
            }
            var otherDevice = f.command(state: .queued)
            otherDevice.deviceID = second.id
            otherDevice.sessionID = secondSession.id
            _ = try await store.insertCommand(otherDevice, event: nil)
            // pending_approval, queued and claimed count; the six terminal states do not.
            #expect(try await store.unfinishedCommandCount(deviceID: f.device.id) == 3)
            #expect(try await store.unfinishedCommandCount(deviceID: second.id) == 1)
            #expect(try await store.unfinishedCommandCount(deviceID: UUID()) == 0)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func expiredPendingCommandsBySeq(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let now = at(baseMillis + 60_000)
            func insert(_ state: CommandState, expiresAt: Int64) async throws -> CommandRecord {
                var c = f.command(state: state)
                c.expiresAt = at(expiresAt)
                return try await store.insertCommand(c, event: nil)
            }
            // Inserted so that seq order differs from expiry order.
            let late = try await insert(.pendingApproval, expiresAt: baseMillis + 59_000)
            let future = try await insert(.pendingApproval, expiresAt: baseMillis + 60_001)
            let exact = try await insert(.pendingApproval, expiresAt: baseMillis + 60_000)
            _ = try await insert(.queued, expiresAt: baseMillis + 1_000)
            _ = try await insert(.rejected, expiresAt: baseMillis + 1_000)
            let early = try await insert(.pendingApproval, expiresAt: baseMillis + 1_000)
            #expect(try await store.expiredPendingCommands(now: now, limit: 100).map(\.id) == [late.id, exact.id, early.id])
            #expect(try await store.expiredPendingCommands(now: now, limit: 2).map(\.id) == [late.id, exact.id])
            #expect(try await store.expiredPendingCommands(now: at(baseMillis), limit: 100).isEmpty)
            #expect(try await store.expiredPendingCommands(now: at(baseMillis + 60_001), limit: 100).map(\.id) == [late.id, future.id, exact.id, early.id])
        }
    }

    @Test(arguments: Backend.recordBackends)
    func queueDepthCountsUnfinishedCommandsPerOrgStateAndPriority(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let a = try await RecordFixture.make(store, slug: "org-a")
            let b = try await RecordFixture.make(store, slug: "org-b")
            let empty = Org(name: "Empty", slug: "org-empty", createdAt: at(baseMillis))
            try await store.insertOrg(empty)
            let now = at(baseMillis + 10_000)
            func insert(_ f: RecordFixture, _ state: CommandState, _ priority: QueuePriority, created: Int64, expires: Int64 = 3_600_000) async throws {
                var c = f.command(state: state, offset: created)
                c.priority = priority
                c.expiresAt = at(baseMillis + expires)
                if state == .claimed { c.leaseToken = UUID(); c.leaseExpiresAt = at(baseMillis + 30_000) }
                _ = try await store.insertCommand(c, event: nil)
            }
            try await insert(a, .queued, .default, created: 30)
            try await insert(a, .queued, .default, created: 10)
            try await insert(a, .queued, .default, created: 20)
            try await insert(a, .queued, .critical, created: 40)
            try await insert(a, .pendingApproval, .bulk, created: 5)
            try await insert(a, .claimed, .default, created: 7)
            // Finished, or past its TTL (waiting for the reaper): not in the queue.
            try await insert(a, .succeeded, .default, created: 1)
            try await insert(a, .deadLettered, .critical, created: 1)
            try await insert(a, .queued, .bulk, created: 1, expires: 10_000)
            try await insert(b, .claimed, .bulk, created: 50)
            try await insert(b, .claimed, .bulk, created: 60)
            try await insert(b, .pendingApproval, .critical, created: 70, expires: 10_001)

            let rowsA = [
                QueueDepthRow(orgID: a.org.id, state: .pendingApproval, priority: .bulk, count: 1, oldestCreatedAt: at(baseMillis + 5)),
                QueueDepthRow(orgID: a.org.id, state: .queued, priority: .critical, count: 1, oldestCreatedAt: at(baseMillis + 40)),
                QueueDepthRow(orgID: a.org.id, state: .queued, priority: .default, count: 3, oldestCreatedAt: at(baseMillis + 10)),
                QueueDepthRow(orgID: a.org.id, state: .claimed, priority: .default, count: 1, oldestCreatedAt: at(baseMillis + 7)),
            ]
            let rowsB = [
                QueueDepthRow(orgID: b.org.id, state: .pendingApproval, priority: .critical, count: 1, oldestCreatedAt: at(baseMillis + 70)),
                QueueDepthRow(orgID: b.org.id, state: .claimed, priority: .bulk, count: 2, oldestCreatedAt: at(baseMillis + 50)),
            ]
            // Ordered by org id (as lowercase text: PostgreSQL's uuid order), state, priority.
            let both = a.org.id.uuidString.lowercased() < b.org.id.uuidString.lowercased() ? rowsA + rowsB : rowsB + rowsA
            #expect(try await store.queueDepth(orgIDs: nil, now: now) == both)
            #expect(try await store.queueDepth(orgIDs: [a.org.id, b.org.id, UUID()], now: now) == both)
            #expect(try await store.queueDepth(orgIDs: [a.org.id], now: now) == rowsA)
            #expect(try await store.queueDepth(orgIDs: [b.org.id, b.org.id], now: now) == rowsB)
            #expect(try await store.queueDepth(orgIDs: [empty.id], now: now).isEmpty)
            #expect(try await store.queueDepth(orgIDs: [], now: now).isEmpty)
            // A millisecond later B's pending command's TTL has lapsed too.
            #expect(try await store.queueDepth(orgIDs: [b.org.id], now: at(baseMillis + 10_001)) == [rowsB[1]])
            await expectInvalidArgument("too many org ids") {
                _ = try await store.queueDepth(orgIDs: (0...StoreLimits.maxBatch).map { _ in UUID() }, now: now)
            }
        }
    }

    @Test func postgresMigrationSetsTheNewDefaultsAndIndexes() async throws {
        try await withPostgresRecordStore { store, psql in
            #expect(try psql("""
                select column_default from information_schema.columns
                where table_schema = 'devicehub' and table_name = 'commands' and column_name = 'visibility_timeout_seconds'
                """) == "30")
            let indexes = try psql("select string_agg(indexname, ',' order by indexname) from pg_indexes where schemaname = 'devicehub'")
            for name in ["commands_idempotency_idx", "commands_device_unfinished_idx", "diagnostic_sessions_pending_expiry_idx",
                         "diagnostic_sessions_org_created_idx"] {
                #expect(indexes.split(separator: ",").contains(Substring(name)), "missing \(name) in \(indexes)")
            }
            // The unique index is the database's own rule, not only the store's.
            let f = try await RecordFixture.make(store)
            var c = f.command()
            c.idempotencyKey = "k"
            _ = try await store.insertCommand(c, event: nil)
            #expect(throws: (any Error).self) {
                _ = try psql("""
                    insert into devicehub.commands (org_id, session_id, device_id, kind, proposed_by, expires_at, idempotency_key)
                    values ('\(f.org.id)', '\(f.session.id)', '\(f.device.id)', 'shell', 'u', now(), 'k')
                    """)
            }
        }
    }
}
