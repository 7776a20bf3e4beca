import Foundation
import HubIO
import HubTestSupport
import Testing
@testable import HubRedis

/// The cluster-mode client against a real three-master Redis Cluster started for the test
/// process (`RedisClusterTestServer`): slot computation, routing, `MOVED`/`ASK` during a real
/// slot migration, and sharded pub/sub across shards. A missing `redis-server` fails these
/// tests; nothing is skipped.
@Suite(.serialized) struct RedisClusterTests {
    /// Two loops for the whole suite: commands from either are routed over its own connections.
    static let group: EventLoopGroup = {
        let group = try! EventLoopGroup(count: 2, registry: nil)
        group.start()
        return group
    }()

    static func cluster() async throws -> RedisClusterTestServer {
        try await TestDatabases.offPool { try SharedTestServers.shared.redisCluster() }
    }

    /// A started cluster-mode client, connected to every master.
    static func connectedClient(_ server: RedisClusterTestServer) async throws -> RedisClient {
        let client = RedisClient(configuration: try RedisConfiguration(url: server.url), loops: group.loops)
        client.start()
        guard await client.waitUntilConnected(timeout: .seconds(10)) else {
            client.close()
            throw RedisTestSetupError(description: "cluster client not connected to \(server.url) within 10 s")
        }
        return client
    }

    // MARK: slots

    @Test func crc16MatchesTheXModemCheckValue() {
        #expect(RedisClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3)
    }

    @Test func hashTagsFollowTheClusterRules() {
        #expect(RedisClusterSlot.of("{user1000}.following") == RedisClusterSlot.of("{user1000}.followers"))
        #expect(Array(RedisClusterSlot.hashTag(Array("foo{}{bar}".utf8))) == Array("foo{}{bar}".utf8))  // empty tag: the whole key
        #expect(RedisClusterSlot.of("foo{{bar}}zap") == RedisClusterSlot.of("{bar"))  // the tag is `{bar`
        #expect(RedisClusterSlot.of("foo{bar}{zap}") == RedisClusterSlot.of("bar"))
        #expect(RedisClusterSlot.of("{bar}") == RedisClusterSlot.of(RedisArgument(bytes: Array("{bar}".utf8))))
    }

    @Test func theFirstKeyDecidesWhereACommandGoes() {
        #expect(RedisClusterSlot.ofCommand(["GET", "k"]) == RedisClusterSlot.of("k"))
        #expect(RedisClusterSlot.ofCommand(["EVALSHA", "abc", "2", "{t}:a", "{t}:b", "x"]) == RedisClusterSlot.of("t"))
        #expect(RedisClusterSlot.ofCommand(["EVAL", "return 1", "0"]) == nil)
        #expect(RedisClusterSlot.ofCommand(["EVALSHA", "abc"]) == nil)  // malformed: any node may refuse it
        #expect(RedisClusterSlot.ofCommand(["PING"]) == nil)
        #expect(RedisClusterSlot.ofCommand(["CLUSTER", "SLOTS"]) == nil)
        #expect(RedisClusterSlot.ofCommand(["SCRIPT", "LOAD", "return 1"]) == nil)
        #expect(RedisClusterSlot.ofCommand(["OBJECT", "ENCODING", "k"]) == RedisClusterSlot.of("k"))
        #expect(RedisClusterSlot.ofCommand(["SPUBLISH", "room:1", "m"]) == RedisClusterSlot.of("room:1"))
    }

    @Test func slotsEqualClusterKeyslot() async throws {
        let server = try await Self.cluster()
        // Through redis-cli, as the brief of these tests asks: tags, empty tags, nested and
        // unbalanced braces, non-ASCII, the hub's own key shapes.
        let keys = ["", "a", "foo", "123456789", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "}{",
                    "{", "}", "{}", "{a", "a}", "x{y}", "é{ü}ß", "dh:queue:{qb0}:due", "dh:queue:{qb255}:seq",
                    "dh:stream:{12:room:org:42}", "dh:stream:{12:room:org:42}:epoch", "dh:kv:presence:6f1c", "dh:pubsub:room:session:9",
                    "test-ABCDEF:queue:{qb17}:3:d:1:m:00000000-0000-0000-0000-000000000000"]
        for key in keys {
            let expected = try await TestDatabases.offPool { try server.keyslot(key) }
            #expect(RedisClusterSlot.of(key) == expected, "key \(key)")
        }
        // Many more through a client: random bytes (any byte value) and random tags.
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        var rng = SystemRandomNumberGenerator()
        var random: [[UInt8]] = []
        for i in 0..<2_000 {
            var key = (0..<Int.random(in: 0...24, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 3 == 0 { key.insert(UInt8(ascii: "{"), at: Int.random(in: 0...key.count, using: &rng)) }
            if i % 4 == 0 { key.insert(UInt8(ascii: "}"), at: Int.random(in: 0...key.count, using: &rng)) }
            random.append(key)
        }
        let replies = await client.sendAll(random.map { ["CLUSTER", "KEYSLOT", RedisArgument(bytes: $0)] })
        var mismatches = 0
        for (key, reply) in zip(random, replies) {
            let slot = try reply.get().integer
            if slot.map(Int.init) != RedisClusterSlot.of(key) { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test func slotMapRepliesAreParsedAndBounded() {
        let reply: RedisValue = .array([
            .array([.integer(0), .integer(5460), .array([.string(Array("10.0.0.1".utf8)), .integer(7000), .string(Array("id1".utf8))]),
                    .array([.string(Array("10.0.0.4".utf8)), .integer(7003)])]),
            .array([.integer(5461), .integer(16383), .array([.string([]), .integer(7001)])]),
        ])
        let ranges = RedisClusterTopology.parseSlots(reply, askedHost: "10.0.0.9")
        #expect(ranges == [.init(first: 0, last: 5460, host: "10.0.0.1", port: 7000), .init(first: 5461, last: 16383, host: "10.0.0.9", port: 7001)])
        // Out of range, reversed, a bad port, not an array: refused whole.
        for bad: RedisValue in [.array([.array([.integer(0), .integer(16384), .array([.string(Array("h".utf8)), .integer(1)])])]),
                                .array([.array([.integer(9), .integer(3), .array([.string(Array("h".utf8)), .integer(1)])])]),
                                .array([.array([.integer(0), .integer(1), .array([.string(Array("h".utf8)), .integer(70000)])])]),
                                .status("OK")] {
            #expect(RedisClusterTopology.parseSlots(bad, askedHost: "h") == nil)
        }
    }

    @Test func redirectsAreParsed() {
        typealias R = RedisClusterRouter.Redirect
        #expect(R("MOVED 3999 127.0.0.1:6381", repliedBy: "x") == .moved("127.0.0.1:6381"))
        #expect(R("ASK 3999 127.0.0.1:6381", repliedBy: "x") == .ask("127.0.0.1:6381"))
        #expect(R("MOVED 3999 :6381", repliedBy: "10.0.0.2") == .moved("10.0.0.2:6381"))  // endpoint unknown: the node that answered
        #expect(R("ERR wrong number of arguments", repliedBy: "x") == nil)
        #expect(R("MOVED x 127.0.0.1:6381", repliedBy: "x") == nil)
    }

    // MARK: routing

    @Test func commandsReachEveryMasterThroughOneClient() async throws {
        let server = try await Self.cluster()
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        let topology = try #require(client.cluster?.current)
        #expect(topology.nodes.count == RedisClusterTestServer.masters)
        // Keys spread over the slots land on all three masters; each is read back through
        // the client and found by redis-cli on the master that owns its slot.
        let prefix = "route-\(UUID().uuidString)"
        var owners: Set<Int> = []
        for i in 0..<60 {
            let key = "\(prefix):\(i)"
            try await client.set(RedisArgument(key), RedisArgument("v\(i)"))
            let owner = try await TestDatabases.offPool { try server.port(servingSlot: RedisClusterSlot.of(key)) }
            owners.insert(owner)
            if i % 20 == 0 {
                let direct = try await TestDatabases.offPool { try server.cli(port: owner, ["GET", key]) }
                #expect(direct.trimmingCharacters(in: .whitespacesAndNewlines) == "v\(i)")
            }
            let read = try await client.getString(RedisArgument(key))
            #expect(read == "v\(i)")
        }
        #expect(owners.count == RedisClusterTestServer.masters)
        // A script: routed by its first key, run on that key's master.
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('INCRBY', KEYS[2], ARGV[1])")
        let tagged = ["{\(prefix)}:a", "{\(prefix)}:b"].map { RedisArgument($0) }
        let sum = try await client.eval(script, keys: tagged, args: [3])
        #expect(sum == .integer(6))
        // Keys of different slots in one command are Redis's to refuse, not ours to split.
        let cross = await client.sendAll([["MGET", RedisArgument("\(prefix):0"), RedisArgument("\(prefix):1")]])
        if case .failure(let error) = cross[0] { #expect(error.serverCode == "CROSSSLOT") } else if RedisClusterSlot.of("\(prefix):0") != RedisClusterSlot.of("\(prefix):1") {
            Issue.record("MGET across slots answered \(cross[0])")
        }
    }

    /// A real slot migration under a connected client: `ASK` while the slot is migrating (a key
    /// already moved is read from the target with `ASKING`), then `MOVED` once it has moved
    /// (the client's map is stale: it follows the redirect and refreshes the map).
    @Test func followsAskDuringAMigrationAndMovedAfterIt() async throws {
        let server = try await Self.cluster()
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        // A slot of our own: not one of the lease queue's bucket slots, which concurrent store
        // tests in this process may be using.
        let bucketSlots = Set((0..<64).map { RedisClusterSlot.of("{qb\($0)}") })  // RedisLeaseQueue.bucketCount
        var tag = UUID().uuidString
        while bucketSlots.contains(RedisClusterSlot.of(tag)) { tag = UUID().uuidString }
        let slot = RedisClusterSlot.of(tag)
        let moved = "{\(tag)}:moved", stays = "{\(tag)}:stays"
        try await client.set(RedisArgument(moved), "1")
        try await client.set(RedisArgument(stays), "2")
        let source = try await TestDatabases.offPool { try server.port(servingSlot: slot) }
        let target = try #require(server.ports.first { $0 != source })
        let (sourceID, targetID) = try await TestDatabases.offPool { (try server.nodeID(port: source), try server.nodeID(port: target)) }
        try await TestDatabases.offPool {
            _ = try server.cli(port: target, ["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID])
            _ = try server.cli(port: source, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", targetID])
            _ = try server.cli(port: source, ["MIGRATE", "127.0.0.1", "\(target)", "", "0", "5000", "KEYS", moved])
        }
        // Migrating: the source answers for `stays`, and ASK for `moved`.
        let askedFor = try await client.getString(RedisArgument(moved))
        #expect(askedFor == "1")
        let stillHere = try await client.getString(RedisArgument(stays))
        #expect(stillHere == "2")
        // Finish: move the rest, then give the slot to the target everywhere.
        try await TestDatabases.offPool {
            _ = try server.cli(port: source, ["MIGRATE", "127.0.0.1", "\(target)", "", "0", "5000", "KEYS", stays])
            for port in [target, source] + server.ports.filter({ $0 != target && $0 != source }) {
                _ = try server.cli(port: port, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID])
            }
        }
        // The client's map still names the source: MOVED, followed.
        let afterMove = try await client.getString(RedisArgument(stays))
        #expect(afterMove == "2")
        try await client.set(RedisArgument(moved), "3")
        let direct = try await TestDatabases.offPool { try server.cli(port: target, ["GET", moved]) }
        #expect(direct.trimmingCharacters(in: .whitespacesAndNewlines) == "3")
        // And the map catches up by itself.
        let refreshed = await waitUntil(timeout: 5) { client.cluster?.current?.node(forSlot: slot)?.port == target }
        #expect(refreshed)
    }

    // MARK: sharded pub/sub

    @Test func shardedPubSubDeliversAcrossShards() async throws {
        let server = try await Self.cluster()
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        let topology = try #require(client.cluster?.current)
        // One channel on each master.
        var channels: [String: String] = [:]  // address → channel
        while channels.count < topology.nodes.count {
            let channel = "room:\(UUID().uuidString)"
            if let node = topology.node(forSlot: RedisClusterSlot.of(channel)), channels[node.address] == nil { channels[node.address] = channel }
        }
        let received = Locked<[String: [String]]>([:])
        let subscriber = RedisClusterSubscriber(client: client, loop: Self.group.loops[1]) { message in
            received.withLock { $0[message.channel, default: []].append(String(decoding: message.payload, as: UTF8.self)) }
        }
        subscriber.start()
        defer { subscriber.close() }
        let wanted = Set(channels.values)
        let confirmed = await waitUntil(timeout: 10) {
            try? await subscriber.subscribe(Array(wanted))
            return await subscriber.activeSubscriptions().channels == wanted
        }
        #expect(confirmed)
        // Each channel is subscribed on the shard that owns it, and only there.
        for (address, channel) in channels {
            let port = Int(address.split(separator: ":").last!)!
            for other in server.ports {
                let listed = try await TestDatabases.offPool { try server.cli(port: other, ["PUBSUB", "SHARDCHANNELS", "room:*"]) }
                #expect(listed.contains(channel) == (other == port), "\(channel) on \(other)")
            }
        }
        for (i, channel) in channels.values.sorted().enumerated() {
            for n in 0..<3 {
                let reply = try await client.send(["SPUBLISH", RedisArgument(channel), RedisArgument("m\(i)-\(n)")])
                #expect(reply == .integer(1))
            }
        }
        let delivered = await waitUntil(timeout: 5) { received.withLock { $0.values.map(\.count).reduce(0, +) } == 3 * channels.count }
        #expect(delivered)
        for (i, channel) in channels.values.sorted().enumerated() {
            #expect(received.withLock { $0[channel] } == ["m\(i)-0", "m\(i)-1", "m\(i)-2"])
        }
        // Unsubscribed: gone from its shard.
        let first = channels.values.sorted()[0]
        subscriber.unsubscribe([first])
        let gone = await waitUntil(timeout: 5) { !(await subscriber.activeSubscriptions().channels.contains(first)) }
        #expect(gone)
        let after = try await client.send(["SPUBLISH", RedisArgument(first), "late"])
        #expect(after == .integer(0))
    }

    /// A master crashes and comes back (same port, same cluster identity, data lost): the
    /// client reconnects to it, and the sharded subscriber resubscribes its channel there.
    /// On a cluster of its own, since the shared one serves concurrent tests.
    @Test func aRestartedShardIsResubscribedAndServedAgain() async throws {
        let server = try await TestDatabases.offPool { try RedisClusterTestServer.start() }
        defer { server.stop() }
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        let topology = try #require(client.cluster?.current)
        let victim = server.ports[1]
        var channel = "room:\(UUID().uuidString)"
        while topology.node(forSlot: RedisClusterSlot.of(channel))?.port != victim { channel = "room:\(UUID().uuidString)" }
        let received = Locked<[String]>([])
        let subscriber = RedisClusterSubscriber(client: client, loop: Self.group.loops[1]) { message in
            received.withLock { $0.append(String(decoding: message.payload, as: UTF8.self)) }
        }
        subscriber.start()
        defer { subscriber.close() }
        let confirmed = await waitUntil(timeout: 10) {
            try? await subscriber.subscribe([channel])
            return await subscriber.activeSubscriptions().channels == [channel]
        }
        #expect(confirmed)
        #expect(try await client.send(["SPUBLISH", RedisArgument(channel), "before"]) == .integer(1))
        // Delivered before the crash (a kill may otherwise catch it in the server's buffer).
        #expect(await waitUntil(timeout: 5) { received.current == ["before"] })

        try await TestDatabases.offPool { try server.restart(port: victim) }

        // Back: the shard's subscriber reconnected and subscribed again by itself.
        let resubscribed = await waitUntil(timeout: 15) {
            (try? await client.send(["SPUBLISH", RedisArgument(channel), "probe"])) == .integer(1)
        }
        #expect(resubscribed)
        #expect(try await client.send(["SPUBLISH", RedisArgument(channel), "after"]) == .integer(1))
        let delivered = await waitUntil(timeout: 5) { received.current.last == "after" }
        #expect(delivered)
        // And commands reach the restarted master again.
        let key = "{\(channel)}:k"
        try await client.set(RedisArgument(key), "v")
        #expect(try await client.getString(RedisArgument(key)) == "v")
    }

    /// A subscribed shard channel whose slot moves to another master: the old master drops it
    /// (`sunsubscribe`), the subscriber refreshes the map and subscribes it on the new owner,
    /// and messages published there arrive. On a cluster of its own.
    @Test func aShardChannelFollowsItsSlotToAnotherMaster() async throws {
        let server = try await TestDatabases.offPool { try RedisClusterTestServer.start() }
        defer { server.stop() }
        let client = try await Self.connectedClient(server)
        defer { client.close() }
        let channel = "room:\(UUID().uuidString)"
        let slot = RedisClusterSlot.of(channel)
        let received = Locked<[String]>([])
        let subscriber = RedisClusterSubscriber(client: client, loop: Self.group.loops[1]) { message in
            received.withLock { $0.append(String(decoding: message.payload, as: UTF8.self)) }
        }
        subscriber.start()
        defer { subscriber.close() }
        #expect(await waitUntil(timeout: 10) {
            try? await subscriber.subscribe([channel])
            return await subscriber.activeSubscriptions().channels == [channel]
        })
        let source = try await TestDatabases.offPool { try server.port(servingSlot: slot) }
        let target = try #require(server.ports.first { $0 != source })
        // The slot holds no keys (a fresh cluster): it can be handed over directly.
        try await TestDatabases.offPool {
            let targetID = try server.nodeID(port: target)
            for port in [target, source] + server.ports.filter({ $0 != target && $0 != source }) {
                _ = try server.cli(port: port, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID])
            }
        }
        // Subscribed on the new owner, by itself.
        // Well within the 10 s periodic refresh: the dropped channel triggers the refresh.
        let moved = await waitUntil(timeout: 5) {
            let listed = try? await TestDatabases.offPool { try server.cli(port: target, ["PUBSUB", "SHARDCHANNELS", channel]) }
            return listed?.contains(channel) == true
        }
        #expect(moved)
        let gone = try await TestDatabases.offPool { try server.cli(port: source, ["PUBSUB", "SHARDCHANNELS", channel]) }
        #expect(!gone.contains(channel))
        // The client follows MOVED for the publish; the message arrives.
        #expect(try await client.send(["SPUBLISH", RedisArgument(channel), "after the move"]) == .integer(1))
        #expect(await waitUntil(timeout: 5) { received.current == ["after the move"] })
    }

    // MARK: configuration

    @Test func clusterURLs() throws {
        let c = try RedisConfiguration(url: "redis+cluster://user:pw@10.0.0.5:7000")
        #expect(c.cluster && c.host == "10.0.0.5" && c.port == 7000 && c.username == "user" && c.password == "pw")
        #expect(try RedisConfiguration(url: "redis://10.0.0.5:7000").cluster == false)
        #expect(throws: RedisURLError.self) { try RedisConfiguration(url: "redis+cluster://10.0.0.5:7000/2") }
    }
}
