import HubSQLite

/// Migrates a SQLite database (the embedded store). The bookkeeping table is
/// `schema_migrations` in the main database (SQLite has no schemas).
///
/// Serialization across processes: each migration runs in `BEGIN IMMEDIATE`, which takes the
/// database's write lock, and first re-checks that the version is still unrecorded, so two
/// processes never apply the same file twice. Migration files must not contain
/// `BEGIN`/`COMMIT`.
public final class SQLiteMigrationDriver: MigrationDriver {
    public let database: SQLiteDatabase

    public init(database: SQLiteDatabase) {
        self.database = database
    }

    public func lock() async throws(MigrationError) {
        do throws(SQLiteError) {
            try await database.executeScript("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    INTEGER PRIMARY KEY,
                    name       TEXT NOT NULL,
                    checksum   TEXT NOT NULL,
                    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
                );
                """)
        } catch {
            throw .database("\(error)")
        }
    }

    public func unlock() async {}

    public func applied() async throws(MigrationError) -> [AppliedMigration] {
        do throws(SQLiteError) {
            let exists = try await database.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
            if exists.isEmpty { return [] }
            return try await database.query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version").map { (row) throws(SQLiteError) in
                AppliedMigration(version: try row.decode(Int.self, at: 0), name: try row.decode(String.self, at: 1),
                                 checksum: try row.decode(String.self, at: 2), appliedAt: try row.decode(String.self, at: 3))
            }
        } catch {
            throw .database("\(error)")
        }
    }

    public func apply(_ migration: Migration) async throws(MigrationError) -> Bool {
        do {
            return try await database.transaction { conn in
                let already = try conn.query("SELECT checksum FROM schema_migrations WHERE version = ?1", [.integer(Int64(migration.version))])
                if let row = already.first {
                    let recorded = try row.decode(String.self, at: 0)
                    if recorded != migration.checksum {
                        throw MigrationError.checksumMismatch([MigrationStatus(version: migration.version, name: migration.name,
                                                                               state: .checksumMismatch(recorded: recorded, file: migration.checksum))])
                    }
                    return false
                }
                try conn.executeScript(migration.sql)
                try conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (?1, ?2, ?3)",
                                 [.integer(Int64(migration.version)), .text(migration.name), .text(migration.checksum)])
                return true
            }
        } catch let error as MigrationError {
            throw error
        } catch {
            throw .failed(version: migration.version, name: migration.name, error: "\(error)")
        }
    }
}
