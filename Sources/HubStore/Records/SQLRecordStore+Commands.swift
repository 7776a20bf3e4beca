import Foundation

// Commands, their events and execution logs.
extension SQLRecordStore {
    /// `seq` is PostgreSQL's identity column; SQLite has no sequence, so there it is max(seq) + 1,
    /// computed inside the inserting transaction (SQLite has one writer).
    public func insertCommand(_ command: CommandRecord, event: CommandEvent?) async throws(StoreError) -> CommandRecord {
        let c = try RecordValidation.command(command)
        let e = try event.map { e throws(StoreError) in try RecordValidation.commandEvent(e, commandID: c.id) }
        let seq: [(column: String, expression: RecordQuery)] =
            dialect == .sqlite ? [("seq", "(SELECT COALESCE(MAX(seq), 0) + 1 FROM \(table: .commands))")] : []
        let insert: RecordQuery = .insert(.commands, RecordColumns.command(c), computed: seq, returning: true)
        let row: (any RecordCells)?
        if dialect == .postgres {
            // One statement (one round trip, its own transaction) instead of a BEGIN ... COMMIT
            // batch of four: this is every accepted command's durable write.
            var statement: RecordQuery = "WITH c AS (\(insert))"
            if let e { statement.append(", f AS (\(RecordQuery.insert(.commandEvents, RecordColumns.commandEvent(e), onlyIfRowsIn: "c")))") }
            statement.append(" SELECT * FROM c")
            row = try await run(statement).rows.first
        } else {
            var steps: [RecordBatch.Step] = [.init(query: insert)]
            if let e { steps.append(.init(query: .insert(.commandEvents, RecordColumns.commandEvent(e)))) }
            row = try await database.run(RecordBatch(steps, atomic: true))[0]?.rows.first
        }
        guard let row else { throw .backend("INSERT ... RETURNING returned no row") }
        return try RecordDecoding.command(row)
    }

    public func command(id: UUID) async throws(StoreError) -> CommandRecord? {
        try await one(.select(.commands, where: "id = \(.uuid(id))"), RecordDecoding.command)
    }

    /// Served by the unique partial index on (session_id, idempotency_key).
    public func command(sessionID: UUID, idempotencyKey: String) async throws(StoreError) -> CommandRecord? {
        guard RecordValidation.isIdempotencyKey(idempotencyKey) else { return nil }
        return try await one(.select(.commands, where: "session_id = \(.uuid(sessionID)) AND idempotency_key = \(.text(idempotencyKey))"),
                             RecordDecoding.command)
    }

    public func commands(sessionID: UUID, states: Set<CommandState>?, afterSeq: Int64, limit: Int) async throws(StoreError) -> [CommandRecord] {
        var filter: RecordQuery = "session_id = \(.uuid(sessionID)) AND seq > \(.int(afterSeq))"
        if let states {
            if states.isEmpty { return [] }
            filter.append(" AND state\(isIn: states.map(\.rawValue))")
        }
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.commands, where: "\(filter) ORDER BY seq LIMIT \(.int(n))"), RecordDecoding.command)
    }

    public func unfinishedCommands(afterSeq: Int64, limit: Int) async throws(StoreError) -> [CommandRecord] {
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.commands, where: "state IN ('queued', 'claimed') AND seq > \(.int(afterSeq)) ORDER BY seq LIMIT \(.int(n))"),
                              RecordDecoding.command)
    }

    /// The conditional update and the event in one transaction: the event is written only when
    /// the update matched. Every part of `condition` goes into the UPDATE's WHERE, so the
    /// check and the write are one step.
    public func updateCommand(id: UUID, where condition: CommandCondition, change: CommandChange, event: CommandEvent?) async throws(StoreError) -> RecordUpdate<CommandRecord> {
        let set = RecordColumns.commandChange(try RecordValidation.commandChange(change))
        let e = try event.map { e throws(StoreError) in try RecordValidation.commandEvent(e, commandID: id) }
        var parts: [RecordCondition] = []
        if let states = condition.states { parts.append(.stateIn(states.map(\.rawValue))) }
        if let attempts = condition.attemptsAtMost { parts.append(.atMost("attempts", Int64(attempts))) }
        if let token = condition.leaseToken { parts.append(.equals("lease_token", .uuid(token))) }
        return try await conditionalUpdate(.commands, id: id, condition: parts.isEmpty ? nil : .all(parts), set: set,
                                           then: e.map { (.commandEvents, RecordColumns.commandEvent($0)) }, RecordDecoding.command)
    }

    public func appendCommandEvent(_ event: CommandEvent) async throws(StoreError) -> CommandEvent {
        let e = try RecordValidation.commandEvent(event)
        return try await returningOne(.insert(.commandEvents, RecordColumns.commandEvent(e), returning: true), RecordDecoding.commandEvent)
    }

    public func commandEvents(commandID: UUID) async throws(StoreError) -> [CommandEvent] {
        try await many(.select(.commandEvents, where: "command_id = \(.uuid(commandID)) ORDER BY id"), RecordDecoding.commandEvent)
    }

    // MARK: execution logs

    @discardableResult
    public func appendLogLines(_ lines: [ExecutionLogLine]) async throws(StoreError) -> Int {
        try await appendLogLinesReportingNew(lines).count
    }

    /// `ON CONFLICT DO NOTHING` skips resent seqs (also within a batch); what was inserted is
    /// what was new. The batch is written differently per dialect, for speed: PostgreSQL takes
    /// it in one statement (one round trip), the batch as one JSON array parameter unpacked by
    /// `jsonb_array_elements`, and names the inserted seqs with `RETURNING`; SQLite, where a
    /// statement costs no round trip, runs one INSERT per line in one transaction and reads
    /// each one's affected-row count.
    public func appendLogLinesReportingNew(_ lines: [ExecutionLogLine]) async throws(StoreError) -> [Int64] {
        let checked = try RecordValidation.logLines(lines)
        if checked.isEmpty { return [] }
        switch dialect {
        case .postgres:
            let batch = checked.map { l in
                LogLineParameter(c: l.commandID.uuidString.lowercased(), s: l.seq, t: l.stream.rawValue, l: l.line, a: RecordTime.millisChecked(l.at) ?? 0)
            }
            guard let data = try? JSONEncoder().encode(batch) else { throw .backend("cannot encode log lines as JSON") }
            let inserted = try await many("""
                INSERT INTO \(table: .logs) (command_id, seq, stream, line, at)
                SELECT (e->>'c')::uuid, (e->>'s')::bigint, e->>'t', e->>'l',
                       'epoch'::timestamptz + (e->>'a')::bigint * interval '1 millisecond'
                FROM jsonb_array_elements(\(.json(String(decoding: data, as: UTF8.self)))) WITH ORDINALITY AS x(e, n)
                ORDER BY n
                ON CONFLICT (command_id, seq) DO NOTHING
                RETURNING seq
                """) { cells throws(StoreError) in try cells.int(0) }
            // RETURNING's row order is not promised: give them back in the order given.
            let new = Set(inserted)
            var seen = Set<Int64>()
            return checked.compactMap { l in new.contains(l.seq) && seen.insert(l.seq).inserted ? l.seq : nil }
        case .sqlite:
            let steps = checked.map { l in
                RecordBatch.Step(query: "\(RecordQuery.insert(.logs, RecordColumns.logLine(l))) ON CONFLICT (command_id, seq) DO NOTHING")
            }
            let outcomes = try await database.run(RecordBatch(steps, atomic: true))
            return zip(checked, outcomes).compactMap { l, outcome in (outcome?.affectedRows ?? 0) > 0 ? l.seq : nil }
        }
    }

    public func logLines(commandID: UUID, afterSeq: Int64, limit: Int) async throws(StoreError) -> [ExecutionLogLine] {
        let n = Int64(StoreLimits.clampBatch(limit))
        return try await many(.select(.logs, where: "command_id = \(.uuid(commandID)) AND seq > \(.int(afterSeq)) ORDER BY seq LIMIT \(.int(n))"),
                              RecordDecoding.logLine)
    }
}

/// One log line inside `appendLogLines`' JSON parameter (short keys: a batch may be large).
private struct LogLineParameter: Encodable {
    let c: String
    let s: Int64
    let t: String
    let l: String
    /// Milliseconds since 1970.
    let a: Int64
}
