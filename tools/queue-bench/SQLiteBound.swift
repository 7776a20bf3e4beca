import BenchSupport
import ArgumentParser
import CSQLite
import Foundation

/// `sqlite-bound`: the embedded store's ceiling for the throughput ratio. One connection, one
/// thread (the embedded record store runs every statement on its database's single thread),
/// WAL mode with the hub's `synchronous` setting (NORMAL unless the hub was built otherwise),
/// single-row write transactions back to back: `BEGIN IMMEDIATE; <one statement>; COMMIT`,
/// prepared once, in the mix one command needs (1 INSERT : 2 UPDATE, as pgbench does for
/// PostgreSQL). The table is shaped like a command row (uuid text keys, a JSON text, a few
/// timestamps, an index on the device and one on the state). Prints one JSON object.
struct SQLiteBound: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sqlite-bound", abstract: "Single-row write transactions/s of SQLite in WAL mode (the embedded store's bound).")
    @Option(help: "Database file (created; put it beside the hub's --data-dir, same disk).") var path: String
    @Option(help: "Measured seconds.") var seconds = 10.0
    @Option(help: "PRAGMA synchronous: normal (the hub's default) or full.") var synchronous = "normal"

    func run() throws {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db else {
            throw Failure("sqlite3_open_v2 \(path) failed")
        }
        defer { sqlite3_close_v2(db) }
        func exec(_ sql: String) throws {
            var err: UnsafeMutablePointer<CChar>?
            if sqlite3_exec(db, sql, nil, nil, &err) != SQLITE_OK {
                let text = err.map { String(cString: $0) } ?? "?"
                sqlite3_free(err)
                throw Failure("\(sql.prefix(60)): \(text)")
            }
        }
        try exec("PRAGMA journal_mode = WAL")
        try exec("PRAGMA synchronous = \(synchronous.uppercased())")
        try exec("PRAGMA foreign_keys = ON")
        try exec("""
            CREATE TABLE bound (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL,
              state TEXT NOT NULL, args TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT,
              created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
            CREATE INDEX bound_device ON bound (device_id, state);
            CREATE INDEX bound_state ON bound (state, seq);
            """)
        func prepare(_ sql: String) throws -> OpaquePointer {
            var s: OpaquePointer?
            guard sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil) == SQLITE_OK, let s else {
                throw Failure("prepare \(sql.prefix(60)): \(String(cString: sqlite3_errmsg(db)))")
            }
            return s
        }
        let begin = try prepare("BEGIN IMMEDIATE"), commit = try prepare("COMMIT")
        let insert = try prepare("INSERT INTO bound (id, device_id, state, args, created_at, updated_at) VALUES (?1, ?2, 'queued', ?3, ?4, ?4)")
        let update = try prepare("UPDATE bound SET state = ?2, attempts = attempts + 1, lease_token = ?3, updated_at = ?4 WHERE seq = ?1")
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)   // SQLITE_TRANSIENT
        func bind(_ s: OpaquePointer, _ i: Int32, _ text: String) { sqlite3_bind_text(s, i, text, -1, transient) }
        func step(_ s: OpaquePointer) throws {
            let rc = sqlite3_step(s)
            guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw Failure("step: \(String(cString: sqlite3_errmsg(db)))") }
            sqlite3_reset(s)
        }
        let devices = (0..<1000).map { _ in UUID().uuidString.lowercased() }
        let now = ISO8601DateFormatter().string(from: Date())
        var inserted: Int64 = 0, updates = 0, inserts = 0
        var n = 0
        let start = Date()
        let end = start.addingTimeInterval(seconds)
        while true {
            if n % 64 == 0 && Date() >= end { break }
            try step(begin)
            if n % 3 == 0 || inserted == 0 {
                bind(insert, 1, UUID().uuidString.lowercased())
                bind(insert, 2, devices[n % devices.count])
                bind(insert, 3, "{\"kind\":\"bench.auto\",\"args\":{\"n\":\(n)}}")
                bind(insert, 4, now)
                try step(insert)
                inserted += 1
                inserts += 1
            } else {
                sqlite3_bind_int64(update, 1, max(1, inserted - Int64(n % 7)))
                bind(update, 2, n % 3 == 1 ? "claimed" : "succeeded")
                bind(update, 3, UUID().uuidString.lowercased())
                bind(update, 4, now)
                try step(update)
                updates += 1
            }
            try step(commit)
            n += 1
        }
        let elapsed = Date().timeIntervalSince(start)
        for s in [begin, commit, insert, update] { sqlite3_finalize(s) }
        let tps = Double(n) / elapsed
        print(json([
            ("mode", "sqlite-bound"), ("synchronous", synchronous.lowercased()), ("seconds", elapsed), ("transactions", n),
            ("inserts", inserts), ("updates", updates), ("write_transactions_per_second", tps),
            ("writes_per_command", 3), ("bound_commands_per_second", tps / 3),
        ]))
    }
}
