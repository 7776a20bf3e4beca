import HubIO
import HubPostgres
import HubRedis
import HubSQLite

extension Stores {
    /// The embedded store: hot state (tokens, counters, pub/sub, room history, the queue) in
    /// this process, durable records in the SQLite database. What survives a restart is what
    /// is in SQLite; the queue is rebuilt from its `commands` rows.
    public static func embedded(database: SQLiteDatabase, queueOptions: LeaseQueueOptions = .init()) -> Stores {
        Stores(keyValue: EmbeddedKeyValueStore(), counters: EmbeddedCounterStore(), pubSub: EmbeddedPubSub(),
               streams: EmbeddedStreamStore(), queue: EmbeddedLeaseQueue(options: queueOptions),
               records: SQLiteRecordStore(database: database))
    }
}

/// Redis for hot state, PostgreSQL for records: every node of a cluster sees the same data.
/// Holds the pub/sub subscriber connection, which `close()` ends.
public final class NetworkedStores: Sendable {
    public let stores: Stores
    private let pubSub: RedisPubSub

    /// `redis` carries commands; pub/sub opens its own subscriber connection with
    /// `redisConfiguration` on `pubSubLoop`. Every key lives under `namespace`.
    public init(redis: RedisClient, redisConfiguration: RedisConfiguration, pubSubLoop: EventLoop, postgres: PostgresPool,
                namespace: RedisNamespace = RedisNamespace(), queueOptions: LeaseQueueOptions = .init()) {
        pubSub = RedisPubSub(client: redis, subscriberConfiguration: redisConfiguration, loop: pubSubLoop, namespace: namespace)
        stores = Stores(keyValue: RedisKeyValueStore(client: redis, namespace: namespace),
                        counters: RedisCounterStore(client: redis, namespace: namespace),
                        pubSub: pubSub,
                        streams: RedisStreamStore(client: redis, namespace: namespace),
                        queue: RedisLeaseQueue(client: redis, namespace: namespace, options: queueOptions),
                        records: PostgresRecordStore(pool: postgres))
    }

    public func close() { pubSub.close() }
}
