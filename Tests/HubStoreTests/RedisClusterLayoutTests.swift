import Foundation
import HubRedis
@testable import HubStore
import HubTestSupport
import Testing

/// The Redis key layout on a real three-master cluster, checked with `redis-cli` (an
/// independent client): every key one script touches lies in one slot, and the keys are where
/// the cluster says that slot lives.
@Suite struct RedisClusterLayoutTests {
    private func cluster() async throws -> RedisClusterTestServer {
        try await TestEnvironment.offPool { try SharedTestServers.shared.redisCluster() }
    }

    /// `CLUSTER KEYSLOT` of each key, by redis-cli.
    private func slots(_ server: RedisClusterTestServer, _ keys: [String]) async throws -> [Int] {
        try await TestEnvironment.offPool { try keys.map { try server.keyslot($0) } }
    }

    /// `EXISTS key` on the master serving its slot, by redis-cli.
    private func existsOnOwner(_ server: RedisClusterTestServer, _ key: String, slot: Int) async throws -> Bool {
        try await TestEnvironment.offPool {
            let port = try server.port(servingSlot: slot)
            return try server.cli(port: port, ["EXISTS", key]).trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        }
    }

    @Test(arguments: ["6f1c2d3e-0000-4000-8000-000000000001", "q:ü {tag} }{", "x"])
    func aQueuesKeysAndItsBucketsIndexShareOneSlot(_ name: String) async throws {
        let server = try await cluster()
        try await TestEnvironment.withRedisCluster { client, _, namespace in
            let queue = RedisLeaseQueue(client: client, namespace: namespace)
            let t0 = StoreMillis.now()
            let (first, second) = (UUID(), UUID())
            _ = try await queue.enqueue(name, QueueFixture.message(first, now: t0), now: t0)
            _ = try await queue.enqueue(name, QueueFixture.message(second, now: t0), now: t0)
            #expect(try await queue.claim(name, max: 1, now: t0).leases.count == 1)
            let bucket = RedisLeaseQueue.bucketPrefix(namespace, RedisLeaseQueue.bucket(of: name))
            let base = bucket + "\(name.utf8.count):\(name):"
            let keys = [base + "ready", base + "leased", base + "due", RedisLeaseQueue.messageKey(namespace, name, first),
                        RedisLeaseQueue.messageKey(namespace, name, second), bucket + "due", bucket + "seq"]
            let keySlots = try await slots(server, keys)
            #expect(Set(keySlots).count == 1, "slots \(keySlots) of \(keys)")
            #expect(keySlots[0] == RedisClusterSlot.of(keys[0]))
            for key in keys {
                #expect(try await existsOnOwner(server, key, slot: keySlots[0]), "\(key) on the master of slot \(keySlots[0])")
            }
        }
    }

    @Test(arguments: ["room:org:42", "room:session:}{x", "}leading"])
    func aStreamAndItsCompanionKeysShareOneSlot(_ name: String) async throws {
        let server = try await cluster()
        try await TestEnvironment.withRedisCluster { client, _, namespace in
            let streams = RedisStreamStore(client: client, namespace: namespace)
            _ = try await streams.append(name, Array("e".utf8), maxLength: 10, ttl: .seconds(60))
            let key = namespace.key("stream", "{\(name.utf8.count):\(name)}")
            let keySlots = try await slots(server, [key, key + ":epoch"])
            #expect(keySlots[0] == keySlots[1])
            #expect(try await existsOnOwner(server, key, slot: keySlots[0]))
        }
    }

    /// The buckets spread the queue over every master, so no shard carries the whole queue.
    @Test func bucketsSpreadOverEveryMaster() async throws {
        let server = try await cluster()
        let namespace = TestEnvironment.namespace()
        let owners = try await TestEnvironment.offPool {
            Set(try server.ports(servingSlots: (0..<RedisLeaseQueue.bucketCount).map {
                RedisClusterSlot.of(RedisLeaseQueue.bucketPrefix(namespace, $0) + "due")
            }))
        }
        #expect(owners.count == RedisClusterTestServer.masters)
    }
}
