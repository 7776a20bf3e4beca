/// One snapshot of a Redis Cluster's slot map: which master serves each of the 16,384 slots, and
/// the client connected to each master. Immutable: a refresh builds a new one and swaps it in,
/// so routing a command reads it without any lock.
public final class RedisClusterTopology: Sendable {
    /// A master and the client (one connection per loop) that talks to it.
    public struct Node: Sendable {
        /// `host:port`, as `MOVED`/`ASK` name it.
        public let address: String
        public let host: String
        public let port: Int
        public let client: RedisClient
    }

    /// Slot → index into `nodes`; `unassigned` for a slot no master serves.
    private let owners: [UInt16]
    public let nodes: [Node]
    static let unassigned = UInt16.max

    init(owners: [UInt16], nodes: [Node]) {
        precondition(owners.count == RedisClusterSlot.count)
        self.owners = owners
        self.nodes = nodes
    }

    /// The master serving `slot`, nil when none does (the cluster is incomplete).
    public func node(forSlot slot: Int) -> Node? {
        let i = owners[slot]
        return i == Self.unassigned ? nil : nodes[Int(i)]
    }

    /// The master at `address` (`host:port`), nil when this map does not know it.
    public func node(address: String) -> Node? { nodes.first { $0.address == address } }

    /// Slot ranges of one master as `CLUSTER SLOTS` reports them.
    struct Range: Equatable {
        var first: Int
        var last: Int
        var host: String
        var port: Int
        var address: String { "\(host):\(port)" }
    }

    /// Most masters a map may name: far above any real cluster, small enough to bound what a
    /// confused server could make us connect to.
    static let maxNodes = 1_000

    /// Parses a `CLUSTER SLOTS` reply: `[[first, last, [host, port, id, …], replica…], …]`.
    /// An empty host means "the node you asked" (`askedHost`). Nil when the reply is malformed
    /// or names more than `maxNodes` masters.
    static func parseSlots(_ reply: RedisValue, askedHost: String) -> [Range]? {
        guard let entries = reply.array, entries.count <= RedisClusterSlot.count else { return nil }
        var ranges: [Range] = []
        var addresses: Set<String> = []
        for entry in entries {
            guard let parts = entry.array, parts.count >= 3, let first = parts[0].integer, let last = parts[1].integer,
                  0 <= first, first <= last, last < RedisClusterSlot.count,
                  let master = parts[2].array, master.count >= 2, let hostText = master[0].text, let port = master[1].integer,
                  (1...65535).contains(port) else { return nil }
            // `?` is what Redis reports for an endpoint it does not know; the node asked is
            // the only sensible fallback for an empty one.
            let host = hostText.isEmpty || hostText == "?" ? askedHost : hostText
            let range = Range(first: Int(first), last: Int(last), host: host, port: Int(port))
            addresses.insert(range.address)
            guard addresses.count <= maxNodes else { return nil }
            ranges.append(range)
        }
        return ranges
    }
}
