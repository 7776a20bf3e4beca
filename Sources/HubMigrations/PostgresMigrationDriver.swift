import HubPostgres

/// Migrates a PostgreSQL database on one session (`PostgresConnection`): the advisory lock is
/// held by the session, so every step must run on the same connection.
///
/// Everything lives in the schema `devicehub` (so the hub can share a Supabase database with
/// `auth` and `public`); the bookkeeping table is `devicehub.schema_migrations`.
///
/// Migration files run inside a transaction the driver opens: they must not contain
/// `BEGIN`/`COMMIT`, nor statements that cannot run in a transaction
/// (`CREATE INDEX CONCURRENTLY`).
public final class PostgresMigrationDriver: MigrationDriver {
    public let connection: PostgresConnection
    /// `statement_timeout` while migrating: index builds on big tables take a while. 10 min.
    public var statementTimeout: Duration = .seconds(600)
    /// Longest wait for another process's migration to finish. 2 min.
    public var lockTimeout: Duration = .seconds(120)
    /// The advisory lock key: "devicehu" in ASCII, unlikely to collide with anyone else's.
    public static let lockKey: Int64 = 0x6465_7669_6365_6875

    private var savedStatementTimeout: String?

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    private var queryTimeout: Duration { statementTimeout + .seconds(5) }

    private func q(_ sql: String, _ params: [PostgresValue?] = [], timeout: Duration? = nil) async throws(PostgresError) -> PostgresRows {
        try await connection.query(sql, params, timeout: timeout ?? queryTimeout)
    }

    public func lock() async throws(MigrationError) {
        do throws(PostgresError) {
            savedStatementTimeout = try await q("SELECT current_setting('statement_timeout')").first?.decode(String.self, at: 0)
            _ = try await q("SELECT set_config('statement_timeout', $1, false)", [.text("\(statementTimeout.components.seconds * 1000)")])
        } catch {
            throw .database("\(error)")
        }
        do throws(PostgresError) {
            // Blocks (in the server, not here) while another process migrates; the client-side
            // deadline cancels the wait.
            _ = try await q("SELECT pg_advisory_lock($1)", [.int(Self.lockKey)], timeout: lockTimeout)
        } catch {
            if case .timeout = error { throw .database("another process held the migration lock for more than \(lockTimeout)") }
            throw .database("\(error)")
        }
        do throws(PostgresError) {
            // Created under the lock: two concurrent CREATE TABLE IF NOT EXISTS can collide.
            try await connection.executeScript("""
                CREATE SCHEMA IF NOT EXISTS devicehub;
                CREATE TABLE IF NOT EXISTS devicehub.schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                );
                """, timeout: queryTimeout)
        } catch {
            await unlock()
            throw .database("\(error)")
        }
    }

    public func unlock() async {
        _ = try? await q("SELECT pg_advisory_unlock($1)", [.int(Self.lockKey)])
        if let saved = savedStatementTimeout {
            _ = try? await q("SELECT set_config('statement_timeout', $1, false)", [.text(saved)])
            savedStatementTimeout = nil
        }
    }

    public func applied() async throws(MigrationError) -> [AppliedMigration] {
        do throws(PostgresError) {
            let rows = try await q("SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM devicehub.schema_migrations ORDER BY version")
            var out: [AppliedMigration] = []
            for row in rows {
                out.append(AppliedMigration(version: try row.decode(Int.self, at: 0), name: try row.decode(String.self, at: 1),
                                            checksum: try row.decode(String.self, at: 2), appliedAt: try row.decode(String.self, at: 3)))
            }
            return out
        } catch {
            // No schema or no table yet: nothing applied.
            if case .server(let code, _) = error, code == "42P01" || code == "3F000" { return [] }
            throw .database("\(error)")
        }
    }

    public func apply(_ migration: Migration) async throws(MigrationError) -> Bool {
        do throws(PostgresError) {
            _ = try await q("BEGIN")
        } catch {
            throw .database("\(error)")
        }
        do throws(PostgresError) {
            try await connection.executeScript(migration.sql, timeout: queryTimeout)
            _ = try await q("INSERT INTO devicehub.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                            [.int(Int64(migration.version)), .text(migration.name), .text(migration.checksum)])
            let commit = try await q("COMMIT")
            if commit.commandTag == "ROLLBACK" { throw PostgresError.server(sqlState: "25P02", message: "transaction aborted") }
            return true
        } catch {
            _ = try? await q("ROLLBACK")
            throw .failed(version: migration.version, name: migration.name, error: "\(error)")
        }
    }
}
