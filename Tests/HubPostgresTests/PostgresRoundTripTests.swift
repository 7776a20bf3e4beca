import Foundation
import HubIO
import HubPostgres
import HubTestSupport
import XCTest

/// Values go in as parameters and come back unchanged, whatever they contain; typed decoding;
/// server errors are typed.
final class PostgresRoundTripTests: PostgresTestCase {
    /// Strings that break naive SQL building, and the largest value the hub might store.
    static let nastyStrings: [String] = [
        "'; DROP TABLE x; --",
        "Robert'); DROP TABLE students;--",
        "\"double\" 'single' `back` $$dollar$$ $1 ?",
        "back\\slash \\\\ \\x00 \\' \\\" E'\\n'",
        "line\nbreak\r\ncarriage\ttab",
        "ünïcödé 日本語 🚀 \u{200B}zero-width",
        "",
        " ",
        String(repeating: "A quick brown fox; ' \" \\ ", count: (1 << 20) / 24), // ~1 MiB
    ]

    func testConnectAndSimpleSelect() async throws {
        let pool = try makePool()
        let rows = try await pool.query("SELECT 1 AS one, 'two'::text AS two, NULL::int AS three")
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.columns.map(\.name), ["one", "two", "three"])
        XCTAssertEqual(try rows[0].decode(Int.self, at: 0), 1)
        XCTAssertEqual(try rows[0].decode(String.self, column: "two"), "two")
        XCTAssertNil(try rows[0].decode(Int?.self, column: "three"))
        XCTAssertTrue(pool.isHealthy)
        await pool.shutdown()
    }

    func testTextBadInputRoundTripsUnchangedInEveryTextField() async throws {
        let server = try requireServer()
        let pool = try makePool()
        _ = try await pool.query("CREATE TABLE x (id int PRIMARY KEY, t text, v varchar, j jsonb, b bytea)")
        for (i, s) in Self.nastyStrings.enumerated() {
            let json = String(data: try JSONSerialization.data(withJSONObject: ["s": s]), encoding: .utf8)!
            let inserted = try await pool.query("INSERT INTO x (id, t, v, j, b) VALUES ($1, $2, $3, $4, $5)",
                                                [.int(Int64(i)), .text(s), .text(s), .json(json), .bytea(Array(s.utf8))])
            XCTAssertEqual(inserted.affectedRows, 1)
            let rows = try await pool.query("SELECT t, v, j, b, t = $2 AS same FROM x WHERE id = $1", [.int(Int64(i)), .text(s)])
            XCTAssertEqual(rows.count, 1)
            let row = rows[0]
            XCTAssertEqual(try row.decode(String.self, column: "t"), s, "text #\(i)")
            XCTAssertEqual(try row.decode(String.self, column: "v"), s, "varchar #\(i)")
            XCTAssertEqual(try row.decode([UInt8].self, column: "b"), Array(s.utf8), "bytea #\(i)")
            XCTAssertTrue(try row.decode(Bool.self, column: "same"), "server-side equality #\(i)")
            let back = try JSONSerialization.jsonObject(with: Data(try row.decode(String.self, column: "j").utf8)) as? [String: String]
            XCTAssertEqual(back?["s"], s, "jsonb #\(i)")
        }
        // The table survived every metacharacter, and an independent client sees the same bytes.
        XCTAssertEqual(try server.psql("SELECT count(*) FROM x"), "\(Self.nastyStrings.count)")
        XCTAssertEqual(try server.psql("SELECT t FROM x WHERE id = 0"), Self.nastyStrings[0])
        XCTAssertEqual(try server.psql("SELECT octet_length(t) FROM x WHERE id = \(Self.nastyStrings.count - 1)"), "\(Self.nastyStrings.last!.utf8.count)")
        XCTAssertEqual(try server.psql("SELECT md5(t) = md5(convert_from(b, 'UTF8')) FROM x WHERE id = \(Self.nastyStrings.count - 1)"), "t")
        await pool.shutdown()
    }

    func testByteaRoundTripsNULAndEveryByteAndOneMebibyte() async throws {
        let server = try requireServer()
        let pool = try makePool()
        _ = try await pool.query("CREATE TABLE blobs (id int PRIMARY KEY, b bytea)")
        var random = SystemRandomNumberGenerator()
        let values: [[UInt8]] = [
            [0],
            [0, 0, 0],
            Array(0...255),
            Array("nul\u{0}inside".utf8),
            [],
            (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) },
        ]
        for (i, v) in values.enumerated() {
            _ = try await pool.query("INSERT INTO blobs VALUES ($1, $2)", [.int(Int64(i)), .bytea(v)])
            let back = try await pool.query("SELECT b, octet_length(b) FROM blobs WHERE id = $1", [.int(Int64(i))])
            XCTAssertEqual(try back[0].decode([UInt8].self, at: 0), v, "bytea #\(i)")
            XCTAssertEqual(try back[0].decode(Int.self, at: 1), v.count)
        }
        XCTAssertEqual(try server.psql("SELECT encode(b, 'hex') FROM blobs WHERE id = 1"), "000000")
        XCTAssertEqual(try server.psql("SELECT octet_length(b) FROM blobs WHERE id = 5"), "\(1 << 20)")
        // A NULL parameter is SQL NULL, not an empty value.
        _ = try await pool.query("INSERT INTO blobs VALUES ($1, $2)", [.int(99), nil])
        XCTAssertEqual(try server.psql("SELECT b IS NULL FROM blobs WHERE id = 99"), "t")
        await pool.shutdown()
    }

    func testNULInTextParameterIsRejectedNotTruncated() async throws {
        let pool = try makePool()
        await assertPostgresError({ try await pool.query("SELECT $1::text", [.text("a\u{0}b")]) }) {
            if case .invalidParameter = $0 { return true }
            return false
        }
        await pool.shutdown()
    }

    func testTypedDecoding() async throws {
        let pool = try makePool()
        let id = UUID()
        let rows = try await pool.query("""
            SELECT 42::int4 AS i4, 9007199254740993::int8 AS i8, -7::int2 AS i2, 3.25::float8 AS f8, 1.5::float4 AS f4,
                   12.50::numeric AS num, true AS yes, false AS no, $1::uuid AS id,
                   '2024-02-29 23:59:58.123456+00'::timestamptz AS ts, '2024-02-29 23:59:58.123456+05:30'::timestamptz AS ts2,
                   '\\x00ff10'::bytea AS bin, '{"a": [1, "x"], "b": null}'::jsonb AS doc, '{"k":1}'::json AS doc2,
                   'infinity'::timestamptz AS inf, NULL::text AS missing, 'NaN'::float8 AS nan
            """, [.uuid(id)])
        let r = rows[0]
        XCTAssertEqual(try r.decode(Int.self, column: "i4"), 42)
        XCTAssertEqual(try r.decode(Int64.self, column: "i8"), 9_007_199_254_740_993)
        XCTAssertEqual(try r.decode(Int32.self, column: "i2"), -7)
        XCTAssertEqual(try r.decode(Double.self, column: "f8"), 3.25)
        XCTAssertEqual(try r.decode(Double.self, column: "f4"), 1.5)
        XCTAssertEqual(try r.decode(Double.self, column: "num"), 12.5)
        XCTAssertEqual(try r.decode(Bool.self, column: "yes"), true)
        XCTAssertEqual(try r.decode(Bool.self, column: "no"), false)
        XCTAssertEqual(try r.decode(UUID.self, column: "id"), id)
        let ts = try r.decode(Date.self, column: "ts")
        XCTAssertEqual(ts.timeIntervalSince1970, 1_709_251_198.123456, accuracy: 0.000001)
        XCTAssertEqual(try r.decode(Date.self, column: "ts2").timeIntervalSince1970, 1_709_251_198.123456 - 5.5 * 3600, accuracy: 0.000001)
        XCTAssertEqual(try r.decode([UInt8].self, column: "bin"), [0x00, 0xff, 0x10])
        let doc = try r.decode(String.self, column: "doc")
        XCTAssertEqual(doc, #"{"a": [1, "x"], "b": null}"#)
        XCTAssertEqual(try r.decode(String.self, column: "doc2"), #"{"k":1}"#)
        XCTAssertEqual(try r.decode(Date.self, column: "inf"), .distantFuture)
        XCTAssertNil(try r.decode(String?.self, column: "missing"))
        XCTAssertTrue(try r.decode(Double.self, column: "nan").isNaN)
        XCTAssertTrue(r.isNull(at: r.columns.firstIndex { $0.name == "missing" }!))

        // Decoding failures are typed, and say what went wrong.
        for (what, attempt) in [
            ("NULL into non-optional", { _ = try r.decode(String.self, column: "missing") }),
            ("text into Int", { _ = try r.decode(Int.self, column: "doc") }),
            ("float into Bool", { _ = try r.decode(Bool.self, column: "f8") }),
            ("bytea from non-hex", { _ = try r.decode([UInt8].self, column: "doc") }),
            ("unknown column", { _ = try r.decode(Int.self, column: "nope") }),
            ("index out of range", { _ = try r.decode(Int.self, at: 99) }),
            ("int8 overflow into Int32", { _ = try r.decode(Int32.self, column: "i8") }),
        ] as [(String, () throws -> Void)] {
            XCTAssertThrowsError(try attempt(), what) { error in
                guard case .decoding = error as? PostgresError else { return XCTFail("\(what): \(error)") }
            }
        }
        await pool.shutdown()
    }

    func testParameterTypesRoundTrip() async throws {
        let pool = try makePool()
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_700_000_000.654321)
        let rows = try await pool.query("SELECT $1, $2, $3, $4, $5, $6, $7, pg_typeof($1)::text, pg_typeof($5)::text, $8::jsonb ->> 'k', $9",
                                        [.int(-9_223_372_036_854_775_807), .double(-0.1), .bool(true), .uuid(id), .timestamptz(when),
                                         .text("plain"), .bytea([1, 0, 2]), .json(#"{"k": "v"}"#), .double(.infinity)])
        let r = rows[0]
        XCTAssertEqual(try r.decode(Int64.self, at: 0), -9_223_372_036_854_775_807)
        XCTAssertEqual(try r.decode(Double.self, at: 1), -0.1)
        XCTAssertEqual(try r.decode(Bool.self, at: 2), true)
        XCTAssertEqual(try r.decode(UUID.self, at: 3), id)
        XCTAssertEqual(try r.decode(Date.self, at: 4).timeIntervalSince1970, when.timeIntervalSince1970, accuracy: 0.000001)
        XCTAssertEqual(try r.decode(String.self, at: 5), "plain")
        XCTAssertEqual(try r.decode([UInt8].self, at: 6), [1, 0, 2])
        XCTAssertEqual(try r.decode(String.self, at: 7), "bigint")
        XCTAssertEqual(try r.decode(String.self, at: 8), "timestamp with time zone")
        XCTAssertEqual(try r.decode(String.self, at: 9), "v")
        XCTAssertEqual(try r.decode(Double.self, at: 10), .infinity)
        await pool.shutdown()
    }

    func testServerErrorsAreTypedAndConnectionStaysUsable() async throws {
        let pool = try makePool { $0.maxConnections = 1 }
        _ = try await pool.query("CREATE TABLE u (k text PRIMARY KEY)")
        _ = try await pool.query("INSERT INTO u VALUES ($1)", ["a"])
        await assertPostgresError({ try await pool.query("INSERT INTO u VALUES ($1)", ["a"]) }) {
            if case .server(let code, let message) = $0 { return code == "23505" && message.contains("duplicate key") }
            return false
        }
        await assertPostgresError({ try await pool.query("SELEC 1") }) {
            if case .server(let code, _) = $0 { return code == "42601" }
            return false
        }
        await assertPostgresError({ try await pool.query("SELECT $1::int", ["not a number"]) }) {
            if case .server(let code, _) = $0 { return code == "22P02" }
            return false
        }
        // Same single connection, still fine.
        let awaited1 = try await pool.query("SELECT count(*) FROM u")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited1, 1)
        await pool.shutdown()
    }

    func testCallbackVariantCompletesOnTheCallersLoop() async throws {
        let pool = try makePool()
        for loop in loops {
            let (onLoop, value): (Bool, Int) = try await withCheckedThrowingContinuation { continuation in
                loop.execute {
                    pool.query("SELECT $1::int + 1", [.int(41)], on: loop) { result in
                        continuation.resume(with: result.map { rows in (loop.inLoop, (try? rows[0].decode(Int.self, at: 0)) ?? -1) }.mapError { $0 as Error })
                    }
                }
            }
            XCTAssertTrue(onLoop)
            XCTAssertEqual(value, 42)
        }
        await pool.shutdown()
    }

    func testManyConcurrentQueriesFromManyTasks() async throws {
        // 400 callers at once: more than maxWaiters (256) would shed load by design, so allow them.
        let pool = try makePool { $0.maxConnections = 4; $0.maxWaiters = 1000 }
        let sums = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<400 {
                group.addTask { try await pool.query("SELECT $1::int * 2", [.int(Int64(i))])[0].decode(Int.self, at: 0) }
            }
            return try await group.reduce(0, +)
        }
        XCTAssertEqual(sums, (0..<400).reduce(0) { $0 + $1 * 2 })
        XCTAssertLessThanOrEqual(pool.statistics.open, 4)
        await pool.shutdown()
    }

    func testStandaloneConnectionAndScript() async throws {
        let server = try requireServer()
        let connection = try await PostgresConnection.connect(to: PostgresConfiguration(url: server.url), on: loops[0])
        try await connection.executeScript("CREATE TABLE s1 (a int); INSERT INTO s1 VALUES (1), (2); CREATE TABLE s2 (b text);")
        let awaited2 = try await connection.query("SELECT sum(a) FROM s1")[0].decode(Int.self, at: 0)
        XCTAssertEqual(awaited2, 3)
        // The session settings every connection makes.
        let settings = try await connection.query("SELECT current_setting('TimeZone'), current_setting('bytea_output'), current_setting('statement_timeout'), current_setting('application_name')")
        XCTAssertEqual(try settings[0].decode(String.self, at: 0), "UTC")
        XCTAssertEqual(try settings[0].decode(String.self, at: 1), "hex")
        XCTAssertEqual(try settings[0].decode(String.self, at: 2), "30s")
        XCTAssertEqual(try settings[0].decode(String.self, at: 3), "devicehub")
        await connection.close()
        XCTAssertTrue(connection.isClosed)
        await assertPostgresError({ try await connection.query("SELECT 1") }) {
            if case .connection = $0 { return true }
            return false
        }
    }

    func testConnectFailureIsTypedAndQuick() async throws {
        _ = try requireServer()
        let start = Date()
        do {
            _ = try await PostgresConnection.connect(to: PostgresConfiguration(url: "postgres://nobody@127.0.0.1:1/db?sslmode=disable"), on: loops[0])
            XCTFail("connected to port 1?")
        } catch {
            guard case .connection = error else { return XCTFail("\(error)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }
}
