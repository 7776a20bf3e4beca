/// One numbered SQL file: `protocol/sql/0001_initial.sql` is version 1, name `initial`.
///
/// The files are embedded into the binary at build time (Plugins/MigrationsPlugin), so a
/// binary always carries exactly the migrations it was built with, wherever it runs from.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    /// SHA-256 of the SQL text, hex. Recorded when applied; a later run refuses to continue if
    /// an applied file no longer has the same checksum (history must not be rewritten: add a
    /// new migration instead).
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = SHA256.hex(sql)
    }

    /// Parses `NNNN_name.sql`.
    public init(fileName: String, sql: String) throws(MigrationError) {
        guard fileName.hasSuffix(".sql"), let underscore = fileName.firstIndex(of: "_"),
              let version = Int(fileName[..<underscore]), version > 0 else {
            throw .invalidFile("\(fileName): migration files are named NNNN_name.sql with NNNN > 0")
        }
        let name = String(fileName[fileName.index(after: underscore)...].dropLast(4))
        guard !name.isEmpty else { throw .invalidFile("\(fileName): the name after the number is empty") }
        self.init(version: version, name: name, sql: sql)
    }

    /// The PostgreSQL migrations (`protocol/sql/*.sql`), in version order.
    public static var postgres: [Migration] {
        get throws(MigrationError) { try load(EmbeddedMigrations.postgres) }
    }

    /// The SQLite migrations (`protocol/sql/sqlite/*.sql`), in version order.
    public static var sqlite: [Migration] {
        get throws(MigrationError) { try load(EmbeddedMigrations.sqlite) }
    }

    /// Parses, sorts and checks a set of files: versions must be unique.
    public static func load(_ files: [(file: String, sql: String)]) throws(MigrationError) -> [Migration] {
        var out: [Migration] = []
        for f in files { out.append(try Migration(fileName: f.file, sql: f.sql)) }
        out.sort { $0.version < $1.version }
        for (a, b) in zip(out, out.dropFirst()) where a.version == b.version {
            throw .invalidFile("two migrations have version \(a.version): \(a.name) and \(b.name)")
        }
        return out
    }
}

/// A migration as recorded in the database's `schema_migrations` table.
public struct AppliedMigration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let checksum: String
    /// As the database wrote it (ISO 8601 text).
    public let appliedAt: String

    public init(version: Int, name: String, checksum: String, appliedAt: String) {
        self.version = version
        self.name = name
        self.checksum = checksum
        self.appliedAt = appliedAt
    }
}

/// Where one migration stands in a database.
public struct MigrationStatus: Sendable, Equatable {
    /// Applied (when), pending, changed since applied, or applied by a newer binary.
    public enum State: Sendable, Equatable {
        case applied(at: String)
        case pending
        /// Applied, but the file changed since (the runner refuses to run).
        case checksumMismatch(recorded: String, file: String)
        /// Recorded in the database but not known to this binary (a newer binary applied it).
        case unknownToThisBinary(at: String)
    }

    public let version: Int
    public let name: String
    public let state: State
}

/// Why migrating did not happen or stopped.
public enum MigrationError: Error, Equatable, CustomStringConvertible {
    /// A file name or set of files is malformed.
    case invalidFile(String)
    /// Applied migrations whose files changed: nothing was applied.
    case checksumMismatch([MigrationStatus])
    /// A migration failed; it was rolled back, and the ones before it stay applied.
    case failed(version: Int, name: String, error: String)
    /// The database could not be reached or used (lock, bookkeeping table).
    case database(String)

    public var description: String {
        switch self {
        case .invalidFile(let m): return "invalid migration file: \(m)"
        case .checksumMismatch(let list):
            let names = list.map { "\(String(format4: $0.version))_\($0.name)" }.joined(separator: ", ")
            return "refusing to migrate: applied migration(s) changed since they were applied: \(names). Add a new migration instead of editing an applied one."
        case .failed(let v, let n, let e): return "migration \(String(format4: v))_\(n) failed and was rolled back: \(e)"
        case .database(let m): return "migration database error: \(m)"
        }
    }
}

extension String {
    /// `7` → `0007`.
    init(format4 v: Int) {
        let s = String(v)
        self = s.count >= 4 ? s : String(repeating: "0", count: 4 - s.count) + s
    }
}
