import Foundation
import HubPostgres
import HubRedis
import HubStore
import Testing

/// The harness itself: each test's PostgreSQL database is migrated and private, each Redis
/// namespace is distinct. If these fail, every conformance result below is suspect.
@Suite struct HarnessTests {
    @Test func postgresDatabasesAreMigratedAndPrivate() async throws {
        try await TestEnvironment.withPostgres { first in
            _ = try await first.query("INSERT INTO devicehub.orgs (name, slug) VALUES ('a', 'harness-a')")
            try await TestEnvironment.withPostgres { second in
                let rows = try await second.query("SELECT count(*) FROM devicehub.orgs")
                #expect(try rows[0].decode(Int64.self, at: 0) == 0)
            }
            let rows = try await first.query("SELECT count(*) FROM devicehub.orgs")
            #expect(try rows[0].decode(Int64.self, at: 0) == 1)
        }
    }

    @Test func sqliteDatabasesAreMigrated() async throws {
        try await TestEnvironment.withSQLite { db in
            let rows = try await db.query("SELECT count(*) FROM orgs")
            #expect(try rows[0].decode(Int64.self, at: 0) == 0)
        }
    }

    @Test func redisNamespacesDiffer() async throws {
        try await TestEnvironment.withRedis { client, _, namespace in
            let other = TestEnvironment.namespace()
            #expect(namespace != other)
            try await client.set(RedisArgument(namespace.key("kv", "x")), "1")
            #expect(try await client.get(RedisArgument(other.key("kv", "x"))) == nil)
        }
    }
}
