import Foundation
import HubMigrations
import HubPostgres
import HubStore
import HubTestSupport
import Synchronization
import Testing

/// PostgreSQL crashes (`pg_ctl stop -m immediate`) under the record store: every call ends
/// promptly with a transient `StoreError`, and the store recovers by itself once the server is
/// back. Nothing acknowledged before the crash is lost (the server is stopped the hard way; its
/// committed WAL survives in the operating system, which does not crash here).
@Suite(.serialized) struct PostgresStoreFaultTests {
    @Test(.timeLimit(.minutes(2)))
    func recordCallsFailFastWhilePostgresIsDownAndRecover() async throws {
        let server = try await TestEnvironment.offPool { try PostgresTestServer.start() }
        defer { server.stop() }
        // The test servers run with synchronous_commit=off for speed, which acknowledges a
        // commit before its WAL leaves shared memory; a crash may then lose it, by design. This
        // test checks durability, so it asks for the production setting.
        _ = try server.psql("ALTER DATABASE postgres SET synchronous_commit TO on")
        let migrator = try await PostgresConnection.connect(to: PostgresConfiguration(url: server.url), on: TestEnvironment.loop)
        _ = try await MigrationRunner(migrations: try Migration.postgres, driver: PostgresMigrationDriver(connection: migrator)).migrate()
        await migrator.close()
        var configuration = PostgresPoolConfiguration(url: server.url)
        configuration.maxConnections = 4
        configuration.acquireTimeout = .seconds(1)
        let pool = PostgresPool(configuration: configuration, loops: TestEnvironment.group.loops)
        let store = PostgresRecordStore(pool: pool)

        let acknowledged = Mutex<[UUID]>([])
        let load = FaultLoad(backoff: .milliseconds(20)) { n in
            let org = Org(name: "org \(n)", slug: "fault-\(n)")
            try await store.insertOrg(org)
            acknowledged.withLock { $0.append(org.id) }
            let back = try await store.org(id: org.id)
            return back?.slug == org.slug ? nil : "read back \(String(describing: back))"
        }

        try await Task.sleep(for: .milliseconds(300))
        try await TestEnvironment.offPool { try server.kill() }
        try await Task.sleep(for: .milliseconds(700))
        try await TestEnvironment.offPool { try server.startServer() }
        let recovered = await eventually(timeout: .seconds(20)) {
            (try? await store.org(slug: "fault-1")) != nil
        }
        #expect(recovered, "the pool reconnects by itself")
        try await Task.sleep(for: .milliseconds(200))
        let outcomes = await load.finish()
        await pool.shutdown()

        let failures = outcomes.filter { $0.error != nil }
        #expect(outcomes.count > failures.count, "some calls succeeded")
        #expect(!failures.isEmpty, "the crash happened mid-stream, so some calls failed")
        for failure in failures {
            #expect(failure.error?.isTransient == true, "failed with \(String(describing: failure.error))")
            #expect(failure.duration < .seconds(2), "a failed call took \(failure.duration)")
        }
        #expect(outcomes.compactMap(\.unexpected).isEmpty, "\(outcomes.compactMap(\.unexpected).prefix(3))")
        #expect(outcomes.last?.error == nil, "the last calls, after the restart, succeeded")

        // Every insert that was acknowledged is still there after the crash (psql, an
        // independent client, counts them).
        let written = Set(acknowledged.withLock { $0 })
        let ids = try server.psql("SELECT id FROM devicehub.orgs").split(separator: "\n").compactMap { UUID(uuidString: String($0)) }
        let lost = written.subtracting(ids)
        #expect(lost.isEmpty, "\(lost.count) of \(written.count) acknowledged orgs lost after the crash")
    }
}
