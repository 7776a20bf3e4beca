/// A database the runner can migrate. The two implementations are `PostgresMigrationDriver`
/// and `SQLiteMigrationDriver`; the runner's rules (order, checksums, idempotence) are the same
/// for both.
public protocol MigrationDriver {
    /// Takes the cross-process migration lock and creates the bookkeeping table if needed.
    func lock() async throws(MigrationError)
    /// Releases the lock (also called after a failure).
    func unlock() async
    /// What the database records as applied; empty when the bookkeeping table does not exist.
    func applied() async throws(MigrationError) -> [AppliedMigration]
    /// Applies one migration and records it, in one transaction. Returns false when it turned
    /// out to be applied already (by another process that got there first).
    func apply(_ migration: Migration) async throws(MigrationError) -> Bool
}

/// Applies pending migrations in version order, each in its own transaction, recording each in
/// `schema_migrations (version, name, checksum, applied_at)`.
///
/// - Idempotent: a second run finds everything recorded and applies nothing.
/// - Refuses to run (applies nothing) when an applied migration's file changed: its checksum no
///   longer matches the recorded one.
/// - Serialized across processes by the driver's lock (`pg_advisory_lock` on PostgreSQL,
///   `BEGIN IMMEDIATE` per migration on SQLite), so several hub processes starting at once
///   migrate exactly once.
/// - Stops at the first failure; earlier migrations stay applied, the failed one is rolled back.
public struct MigrationRunner {
    public let migrations: [Migration]
    public let driver: MigrationDriver

    public init(migrations: [Migration], driver: MigrationDriver) {
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.driver = driver
    }

    /// Applies what is pending; returns the migrations applied by this run (empty when the
    /// database was up to date).
    @discardableResult
    public func migrate() async throws(MigrationError) -> [Migration] {
        try await driver.lock()
        do throws(MigrationError) {
            let recorded = try await driver.applied()
            let mismatched = Self.status(migrations: migrations, applied: recorded).filter {
                if case .checksumMismatch = $0.state { return true }
                return false
            }
            guard mismatched.isEmpty else { throw MigrationError.checksumMismatch(mismatched) }
            let done = Set(recorded.map(\.version))
            var appliedNow: [Migration] = []
            for migration in migrations where !done.contains(migration.version) {
                if try await driver.apply(migration) { appliedNow.append(migration) }
            }
            await driver.unlock()
            return appliedNow
        } catch {
            await driver.unlock()
            throw error
        }
    }

    /// Where each migration stands, without changing anything (no lock taken).
    public func status() async throws(MigrationError) -> [MigrationStatus] {
        Self.status(migrations: migrations, applied: try await driver.applied())
    }

    static func status(migrations: [Migration], applied: [AppliedMigration]) -> [MigrationStatus] {
        let recorded = Dictionary(applied.map { ($0.version, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [MigrationStatus] = migrations.map { m in
            guard let r = recorded[m.version] else { return MigrationStatus(version: m.version, name: m.name, state: .pending) }
            if r.checksum != m.checksum {
                return MigrationStatus(version: m.version, name: m.name, state: .checksumMismatch(recorded: r.checksum, file: m.checksum))
            }
            return MigrationStatus(version: m.version, name: m.name, state: .applied(at: r.appliedAt))
        }
        let known = Set(migrations.map(\.version))
        for r in applied where !known.contains(r.version) {
            out.append(MigrationStatus(version: r.version, name: r.name, state: .unknownToThisBinary(at: r.appliedAt)))
        }
        return out.sorted { $0.version < $1.version }
    }
}
