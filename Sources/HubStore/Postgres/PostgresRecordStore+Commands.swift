import Foundation
import HubPostgres

// Commands, their events and execution logs.
extension PostgresRecordStore {
    public func insertCommand(_ command: CommandRecord, event: CommandEvent?) async throws(StoreError) -> CommandRecord {
        let c = try RecordValidation.command(command)
        let e = try event.map { e throws(StoreError) in try RecordValidation.commandEvent(e, commandID: c.id) }
        let insert = try PostgresSQL.insert(.commands, RecordColumns.command(c), returning: true)
        let eventInsert = try e.map { e throws(StoreError) in try PostgresSQL.insert(.commandEvents, RecordColumns.commandEvent(e)) }
        return try await transaction { conn in
            guard let row = try await conn.query(insert.sql, insert.params).first else { throw StoreError.backend("INSERT ... RETURNING returned no row") }
            let inserted = try RecordDecoding.command(PostgresRecordCells(row: row))
            if let eventInsert { _ = try await conn.query(eventInsert.sql, eventInsert.params) }
            return inserted
        }
    }

    public func command(id: UUID) async throws(StoreError) -> CommandRecord? {
        try await one(.commands, where: "id = $1", [.uuid(id)], RecordDecoding.command)
    }

    public func commands(sessionID: UUID, afterSeq: Int64, limit: Int) async throws(StoreError) -> [CommandRecord] {
        try await many(.commands, where: "session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                       [.uuid(sessionID), .int(afterSeq), .int(Int64(StoreLimits.clampBatch(limit)))], RecordDecoding.command)
    }

    public func unfinishedCommands(afterSeq: Int64, limit: Int) async throws(StoreError) -> [CommandRecord] {
        try await many(.commands, where: "state IN ('queued', 'claimed') AND seq > $1 ORDER BY seq LIMIT $2",
                       [.int(afterSeq), .int(Int64(StoreLimits.clampBatch(limit)))], RecordDecoding.command)
    }

    /// The conditional update and the event in one transaction: the event is written only when
    /// the update matched.
    public func updateCommand(id: UUID, expected: Set<CommandState>?, change: CommandChange, event: CommandEvent?) async throws(StoreError) -> RecordUpdate<CommandRecord> {
        let set = RecordColumns.commandChange(try RecordValidation.commandChange(change))
        let e = try event.map { e throws(StoreError) in try RecordValidation.commandEvent(e, commandID: id) }
        let eventInsert = try e.map { e throws(StoreError) in try PostgresSQL.insert(.commandEvents, RecordColumns.commandEvent(e)) }
        let condition = expected.map { RecordCondition.stateIn($0.map(\.rawValue)) }
        return try await transaction { conn in
            let result = try await Self.conditionalUpdate(conn, .commands, id: id, condition: condition, set: set, RecordDecoding.command)
            if case .updated = result, let eventInsert { _ = try await conn.query(eventInsert.sql, eventInsert.params) }
            return result
        }
    }

    public func appendCommandEvent(_ event: CommandEvent) async throws(StoreError) -> CommandEvent {
        let e = try RecordValidation.commandEvent(event)
        return try await returningOne(try PostgresSQL.insert(.commandEvents, RecordColumns.commandEvent(e), returning: true), RecordDecoding.commandEvent)
    }

    public func commandEvents(commandID: UUID) async throws(StoreError) -> [CommandEvent] {
        try await many(.commandEvents, where: "command_id = $1 ORDER BY id", [.uuid(commandID)], RecordDecoding.commandEvent)
    }

    // MARK: execution logs

    /// All lines in one statement: the batch travels as one JSON array parameter, unpacked by
    /// `jsonb_array_elements`; `ON CONFLICT DO NOTHING` skips resent seqs (also within a batch),
    /// and the affected-row count is the number of new lines.
    @discardableResult
    public func appendLogLines(_ lines: [ExecutionLogLine]) async throws(StoreError) -> Int {
        let checked = try RecordValidation.logLines(lines)
        if checked.isEmpty { return 0 }
        let batch = checked.map { l in
            LogLineParameter(c: l.commandID.uuidString.lowercased(), s: l.seq, t: l.stream.rawValue, l: l.line, a: RecordTime.millisChecked(l.at) ?? 0)
        }
        guard let data = try? JSONEncoder().encode(batch) else { throw .backend("cannot encode log lines as JSON") }
        let rows = try await query("""
            INSERT INTO devicehub.execution_logs (command_id, seq, stream, line, at)
            SELECT (e->>'c')::uuid, (e->>'s')::bigint, e->>'t', e->>'l',
                   'epoch'::timestamptz + (e->>'a')::bigint * interval '1 millisecond'
            FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, n)
            ORDER BY n
            ON CONFLICT (command_id, seq) DO NOTHING
            """, [.json(String(decoding: data, as: UTF8.self))])
        return rows.affectedRows ?? 0
    }

    public func logLines(commandID: UUID, afterSeq: Int64, limit: Int) async throws(StoreError) -> [ExecutionLogLine] {
        try await many(.logs, where: "command_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                       [.uuid(commandID), .int(afterSeq), .int(Int64(StoreLimits.clampBatch(limit)))], RecordDecoding.logLine)
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
