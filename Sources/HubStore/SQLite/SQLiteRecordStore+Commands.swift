import Foundation
import HubSQLite

// Commands, their events and execution logs.
extension SQLiteRecordStore {
    public func insertCommand(_ command: CommandRecord, event: CommandEvent?) async throws(StoreError) -> CommandRecord {
        let c = try RecordValidation.command(command)
        let e = try event.map { e throws(StoreError) in try RecordValidation.commandEvent(e, commandID: c.id) }
        // seq is max(seq) + 1, computed inside the inserting transaction (SQLite has one writer).
        var statement = SQLiteSQL()
        let values = RecordColumns.command(c)
        let placeholders = try values.map { v throws(StoreError) in try statement.bind(v.value) }.joined(separator: ", ")
        statement.sql = """
            INSERT INTO commands (seq, \(values.map(\.column).joined(separator: ", ")))
            VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM commands), \(placeholders))
            RETURNING \(SQLiteSQL.columns(.commands))
            """
        let eventStatement = try e.map { e throws(StoreError) in try SQLiteSQL.insert(.commandEvents, RecordColumns.commandEvent(e)) }
        return try await transaction { conn in
            let inserted = try Self.returningOne(conn, statement, RecordDecoding.command)
            if let eventStatement { try conn.execute(eventStatement.sql, eventStatement.params) }
            return inserted
        }
    }

    public func command(id: UUID) async throws(StoreError) -> CommandRecord? {
        try await one(.commands, where: "id = ?1", [.uuid(id)], RecordDecoding.command)
    }

    public func commands(sessionID: UUID, afterSeq: Int64, limit: Int) async throws(StoreError) -> [CommandRecord] {
        try await many(.commands, where: "session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                       [.uuid(sessionID), .integer(afterSeq), .integer(Int64(StoreLimits.clampBatch(limit)))], RecordDecoding.command)
    }

    public func unfinishedCommands(afterSeq: Int64, limit: Int) async throws(StoreError) -> [CommandRecord] {
        try await many(.commands, where: "state IN ('queued', 'claimed') AND seq > ?1 ORDER BY seq LIMIT ?2",
                       [.integer(afterSeq), .integer(Int64(StoreLimits.clampBatch(limit)))], RecordDecoding.command)
    }

    public func updateCommand(id: UUID, expected: Set<CommandState>?, change: CommandChange, event: CommandEvent?) async throws(StoreError) -> RecordUpdate<CommandRecord> {
        let set = RecordColumns.commandChange(try RecordValidation.commandChange(change))
        let e = try event.map { e throws(StoreError) in try RecordValidation.commandEvent(e, commandID: id) }
        let eventStatement = try e.map { e throws(StoreError) in try SQLiteSQL.insert(.commandEvents, RecordColumns.commandEvent(e)) }
        let condition = expected.map { RecordCondition.stateIn($0.map(\.rawValue)) }
        return try await transaction { conn in
            let result = try Self.conditionalUpdate(conn, .commands, id: id, condition: condition, set: set, RecordDecoding.command)
            if case .updated = result, let eventStatement { try conn.execute(eventStatement.sql, eventStatement.params) }
            return result
        }
    }

    public func appendCommandEvent(_ event: CommandEvent) async throws(StoreError) -> CommandEvent {
        let e = try RecordValidation.commandEvent(event)
        return try await returningOne(try SQLiteSQL.insert(.commandEvents, RecordColumns.commandEvent(e), returning: true), RecordDecoding.commandEvent)
    }

    public func commandEvents(commandID: UUID) async throws(StoreError) -> [CommandEvent] {
        try await many(.commandEvents, where: "command_id = ?1 ORDER BY id", [.uuid(commandID)], RecordDecoding.commandEvent)
    }

    // MARK: execution logs

    @discardableResult
    public func appendLogLines(_ lines: [ExecutionLogLine]) async throws(StoreError) -> Int {
        let checked = try RecordValidation.logLines(lines)
        if checked.isEmpty { return 0 }
        let statements = try checked.map { l throws(StoreError) -> SQLiteSQL in
            var s = try SQLiteSQL.insert(.logs, RecordColumns.logLine(l))
            s.sql += " ON CONFLICT (command_id, seq) DO NOTHING"
            return s
        }
        return try await transaction { conn in
            try statements.reduce(0) { $0 + (try conn.execute($1.sql, $1.params)) }
        }
    }

    public func logLines(commandID: UUID, afterSeq: Int64, limit: Int) async throws(StoreError) -> [ExecutionLogLine] {
        try await many(.logs, where: "command_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                       [.uuid(commandID), .integer(afterSeq), .integer(Int64(StoreLimits.clampBatch(limit)))], RecordDecoding.logLine)
    }
}
