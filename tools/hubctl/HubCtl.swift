import ArgumentParser
import Foundation
import HubIO
import HubMigrations
import HubPostgres
import HubSQLite

/// `hubctl`: the hub operator's command-line tool. It builds on the store libraries (migrate)
/// and on HubHTTPClient (the admin API of a running hub), never on the server's insides.
@main
struct HubCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubctl",
        abstract: "DeviceHub operator tool.",
        discussion: """
            The admin commands (org, member, api-key) talk to a running hub: --url (or \
            DEVICEHUB_URL, default http://127.0.0.1:8080) and --token (or DEVICEHUB_ADMIN_TOKEN) may \
            be given before the subcommand or after it.
            """,
        subcommands: [Migrate.self, OrgCommand.self, MemberCommand.self, APIKeyCommand.self, MintDevJWT.self])

    /// ArgumentParser reads an option only on the command that declares it, and the admin
    /// options are declared on each leaf command (so its help lists them). Moving them from
    /// before the subcommand to its end lets `hubctl --url U org get ID` work as well.
    static func main() async {
        await main(AdminOptions.hoistingLeadingOptions(Array(CommandLine.arguments.dropFirst())))
    }
}

/// `hubctl migrate`: applies the SQL migrations embedded in this binary (built from
/// protocol/sql), or shows their status.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (or show their status with --status).",
        discussion: """
            The migration files (protocol/sql/NNNN_*.sql for PostgreSQL, protocol/sql/sqlite/ for \
            SQLite) are embedded in this binary when it is built. Each pending file runs in its own \
            transaction and is recorded in schema_migrations; a second run applies nothing. The run \
            is refused if an applied file has changed since (checksum mismatch). Concurrent runs \
            against one PostgreSQL database are serialized with pg_advisory_lock.
            """)

    @Option(name: .customLong("postgres-url"), help: ArgumentHelp("PostgreSQL URL, e.g. postgres://user:pass@host:5432/db?sslmode=require. Default: $DEVICEHUB_POSTGRES_URL.", valueName: "url"))
    var postgresURL: String?

    @Option(name: .customLong("sqlite"), help: ArgumentHelp("Path of the embedded store's SQLite database (created if missing).", valueName: "path"))
    var sqlitePath: String?

    @Flag(name: .customLong("status"), help: "Show each migration's state instead of applying anything.")
    var status = false

    @Option(name: .customLong("lock-timeout"), help: "Seconds to wait for another process that is migrating the same PostgreSQL database.")
    var lockTimeout: Int = 120

    private var effectivePostgresURL: String? {
        if let postgresURL, !postgresURL.isEmpty { return postgresURL }
        if sqlitePath != nil { return nil }
        let env = ProcessInfo.processInfo.environment["DEVICEHUB_POSTGRES_URL"]
        return env?.isEmpty == false ? env : nil
    }

    func validate() throws {
        if postgresURL != nil && sqlitePath != nil {
            throw ValidationError("give either --postgres-url or --sqlite, not both")
        }
        if effectivePostgresURL == nil && sqlitePath == nil {
            throw ValidationError("no database: give --postgres-url URL (or set DEVICEHUB_POSTGRES_URL) or --sqlite PATH")
        }
    }

    func run() async throws {
        do {
            if let path = sqlitePath {
                try await runSQLite(path: path)
            } else if let url = effectivePostgresURL {
                try await runPostgres(url: url)
            }
        } catch let error as MigrationError {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }

    private func runPostgres(url: String) async throws {
        let group = try EventLoopGroup(count: 1, registry: nil)
        group.start()
        defer { group.stopAndJoin() }
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: url), on: group.loops[0])
        } catch {
            printError("error: cannot connect to PostgreSQL: \(error)")
            throw ExitCode.failure
        }
        let driver = PostgresMigrationDriver(connection: connection)
        driver.lockTimeout = .seconds(lockTimeout)
        do {
            try await execute(MigrationRunner(migrations: try Migration.postgres, driver: driver), target: "PostgreSQL (schema devicehub)")
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }

    private func runSQLite(path: String) async throws {
        let database: SQLiteDatabase
        do {
            database = try await SQLiteDatabase.open(path: path)
        } catch {
            printError("error: cannot open \(path): \(error)")
            throw ExitCode.failure
        }
        do {
            try await execute(MigrationRunner(migrations: try Migration.sqlite, driver: SQLiteMigrationDriver(database: database)), target: "SQLite \(path)")
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }

    private func execute(_ runner: MigrationRunner, target: String) async throws {
        if status {
            let states = try await runner.status()
            print("migrations for \(target):")
            for s in states {
                let label: String
                switch s.state {
                case .applied(let at): label = "applied      \(at)"
                case .pending: label = "pending"
                case .checksumMismatch(let recorded, let file): label = "CHANGED      recorded \(recorded.prefix(12)), file \(file.prefix(12))"
                case .unknownToThisBinary(let at): label = "applied      \(at) (not in this binary: applied by a newer version)"
                }
                print("  \(String(format4: s.version))_\(s.name.padding(toLength: max(s.name.count, 24), withPad: " ", startingAt: 0)) \(label)")
            }
            let pending = states.filter { $0.state == .pending }.count
            print(pending == 0 ? "up to date" : "\(pending) pending")
            return
        }
        let applied = try await runner.migrate()
        for m in applied {
            print("applied \(String(format4: m.version))_\(m.name) (sha256 \(m.checksum.prefix(12)))")
        }
        print(applied.isEmpty ? "\(target) is up to date (\(runner.migrations.count) migration(s), none pending)"
                              : "\(target): applied \(applied.count) migration(s)")
    }

    private func printError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

extension String {
    init(format4 v: Int) {
        let s = String(v)
        self = s.count >= 4 ? s : String(repeating: "0", count: 4 - s.count) + s
    }
}
