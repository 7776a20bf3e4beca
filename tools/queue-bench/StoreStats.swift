import BenchSupport
import Foundation

/// Readings of the stores around a measured window, through their own command-line clients
/// (psql, redis-cli): where the time of a command goes, counted by the servers themselves.
enum StoreStats {
    /// Runs a command; its stdout, or nil (with a note) when it fails.
    static func run(_ argv: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch {
            Log.note("\(argv.first ?? "?"): \(error)")
            return nil
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            Log.note("\(argv.prefix(2).joined(separator: " ")) failed: \(String(decoding: errData, as: UTF8.self).prefix(300))")
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func psql(_ url: String, _ sql: String) -> String? {
        run(["psql", "-X", "-q", "-At", "-F", " ", "-d", url, "-c", sql])?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: PostgreSQL

    static let pgFields = ["xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_returned", "tup_fetched",
                           "wal_records", "wal_bytes", "wal_write", "wal_sync"]

    /// Counters of the hub's database and the server's WAL (pg_stat_wal, PostgreSQL 14+).
    static func pgSnapshot(_ url: String) -> [String: Double]? {
        let sql = """
            select d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted, d.tup_returned, d.tup_fetched,
                   w.wal_records, w.wal_bytes, w.wal_write, w.wal_sync
            from pg_stat_database d, pg_stat_wal w where d.datname = current_database()
            """
        guard let line = psql(url, sql) else { return nil }
        let values = line.split(separator: " ").compactMap { Double($0) }
        guard values.count == pgFields.count else { return nil }
        return Dictionary(uniqueKeysWithValues: zip(pgFields, values))
    }

    /// Clears pg_stat_statements (when the extension is installed); false otherwise.
    static func pgStatementsReset(_ url: String) -> Bool {
        psql(url, "select pg_stat_statements_reset()") != nil
    }

    /// The statements run since the reset, most called first: calls, total and mean execution
    /// milliseconds, rows, and the normalised text.
    static func pgStatements(_ url: String, limit: Int = 30) -> [[String: Any]]? {
        let sql = """
            select coalesce(json_agg(t), '[]') from (
              select calls, round(total_exec_time::numeric, 1) as total_ms, round(mean_exec_time::numeric, 3) as mean_ms, rows,
                     left(regexp_replace(query, '\\s+', ' ', 'g'), 200) as query
              from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
              order by calls desc limit \(limit)) t
            """
        guard let text = psql(url, sql), let data = text.data(using: .utf8),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return nil }
        return list
    }

    /// Deltas of two PostgreSQL snapshots divided by `per` (commands), as JSON pairs.
    static func pgPerCommand(_ a: [String: Double]?, _ b: [String: Double]?, per: Double) -> [(String, Any?)]? {
        guard let a, let b, per > 0 else { return nil }
        return [("commands_counted", per)] + pgFields.map { f in ("\(f)_per_command", ((b[f] ?? 0) - (a[f] ?? 0)) / per) }
    }

    // MARK: Redis

    /// `calls` per command from INFO commandstats.
    static func redisSnapshot(_ url: String) -> [String: Double]? {
        guard let text = run(["redis-cli", "-u", url, "info", "commandstats"]) else { return nil }
        var out: [String: Double] = [:]
        for line in text.split(whereSeparator: { $0.isNewline }) where line.hasPrefix("cmdstat_") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[line.index(line.startIndex, offsetBy: 8)..<colon])
            for field in line[line.index(after: colon)...].split(separator: ",") where field.hasPrefix("calls=") {
                out[name] = Double(field.dropFirst(6))
            }
        }
        return out
    }

    static func redisPerCommand(_ a: [String: Double]?, _ b: [String: Double]?, per: Double) -> [(String, Any?)]? {
        guard let a, let b, per > 0 else { return nil }
        return b.keys.sorted().compactMap { k in
            let d = (b[k] ?? 0) - (a[k] ?? 0) - (k == "info" ? 1 : 0)   // our own INFO
            return d > 0 ? (k, d / per) : nil
        }
    }
}
