import Foundation
import HubRedis
@testable import HubStore
import HubTestSupport
import Testing

/// The lease queue on a cluster that loses a master, on a cluster of its own (the shared one
/// serves concurrent tests) whose masters keep serving while another is down.
@Suite struct RedisClusterFaultTests {
    /// The reaper's sweep goes on for the buckets of the masters that are up; the dead
    /// master's buckets wait for it.
    @Test func sweepGoesOnWhileOneMasterIsDown() async throws {
        let server = try await TestEnvironment.offPool { try RedisClusterTestServer.start(requireFullCoverage: false) }
        defer { server.stop() }
        let client = RedisClient(configuration: server.configuration, loops: TestEnvironment.group.loops)
        client.start()
        defer { client.close() }
        #expect(await client.waitUntilConnected(timeout: .seconds(10)))
        let namespace = TestEnvironment.namespace()
        let queue = RedisLeaseQueue(client: client, namespace: namespace)
        let victim = server.ports[2]
        // One queue whose bucket lives on the victim, one on another master.
        let names = (0..<200).map { "device-\($0)" }
        let owners = try await TestEnvironment.offPool {
            try server.ports(servingSlots: names.map { RedisClusterSlot.of(RedisLeaseQueue.bucketPrefix(namespace, RedisLeaseQueue.bucket(of: $0))) })
        }
        let doomed = try #require(zip(names, owners).first { $0.1 == victim }?.0)
        let alive = try #require(zip(names, owners).first { $0.1 != victim }?.0)
        let t0 = StoreMillis.now()
        for name in [doomed, alive] {
            _ = try await queue.enqueue(name, QueueFixture.message(vt: .seconds(1), now: t0), now: t0)
            #expect(try await queue.claim(name, max: 1, now: t0).leases.count == 1)
        }
        server.kill(port: victim)
        let page = try await queue.sweep(now: t0 + 1_000, limit: 10)
        #expect(page.map(\.queue) == [alive])
        #expect(page.first?.state == .queued)
        // Nothing reachable left to sweep: the dead master's bucket is an error, not silence.
        let again = await storeError { _ = try await queue.sweep(now: t0 + 1_000, limit: 10) }
        #expect(again != nil)
    }
}
