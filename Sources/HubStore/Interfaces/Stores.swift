/// Everything the domain stores, behind interfaces that hide the backend: the embedded store
/// (`EmbeddedStores`) or Redis + PostgreSQL (`NetworkedStores`), chosen once at start-up.
public struct Stores: Sendable {
    public var keyValue: any KeyValueStore
    public var counters: any CounterStore
    public var pubSub: any PubSub
    public var streams: any StreamStore
    public var queue: any LeaseQueue
    public var records: any RecordStore

    public init(keyValue: any KeyValueStore, counters: any CounterStore, pubSub: any PubSub, streams: any StreamStore,
                queue: any LeaseQueue, records: any RecordStore) {
        self.keyValue = keyValue
        self.counters = counters
        self.pubSub = pubSub
        self.streams = streams
        self.queue = queue
        self.records = records
    }
}
