import HubHTTP
import HubStore

/// A command as a customer proposes it, checked against every limit before anything is written.
public struct Proposal: Sendable, Equatable {
    public var kind: String
    /// The arguments: a JSON object's text.
    public var arguments: String
    public var priority: QueuePriority
    public var ttlSeconds: Int
    public var maxAttempts: Int
    public var visibilityTimeoutSeconds: Int
    public var idempotencyKey: String?

    public init(kind: String, arguments: String, priority: QueuePriority, ttlSeconds: Int, maxAttempts: Int,
                visibilityTimeoutSeconds: Int, idempotencyKey: String?) {
        self.kind = kind
        self.arguments = arguments
        self.priority = priority
        self.ttlSeconds = ttlSeconds
        self.maxAttempts = maxAttempts
        self.visibilityTimeoutSeconds = visibilityTimeoutSeconds
        self.idempotencyKey = idempotencyKey
    }

    /// Largest `args` object, as JSON text.
    public static let maxArgumentBytes = 16_384
    /// Longest TTL: a week.
    public static let maxTTLSeconds = 604_800

    /// Throws 400 `invalid_argument` naming the first field outside its limits.
    public func validate() throws(Problem) {
        guard Self.isValidKind(kind) else { throw .invalid("kind must match ^[a-z][a-z0-9_.-]{0,63}$") }
        guard arguments.utf8.count <= Self.maxArgumentBytes else { throw .invalid("args is larger than \(Self.maxArgumentBytes) bytes") }
        guard arguments.utf8.first == UInt8(ascii: "{") else { throw .invalid("args must be a JSON object") }
        guard (1...Self.maxTTLSeconds).contains(ttlSeconds) else { throw .invalid("ttl_seconds must be 1...\(Self.maxTTLSeconds)") }
        guard (1...100).contains(maxAttempts) else { throw .invalid("max_attempts must be 1...100") }
        guard (1...43_200).contains(visibilityTimeoutSeconds) else { throw .invalid("visibility_timeout_seconds must be 1...43200") }
        if let key = idempotencyKey {
            guard (1...128).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
                throw .invalid("idempotency_key must be 1...128 printable ASCII characters")
            }
        }
    }

    /// `^[a-z][a-z0-9_.-]{0,63}$`: the hub does not know kinds, it only keeps their names tame.
    public static func isValidKind(_ kind: String) -> Bool {
        let bytes = Array(kind.utf8)
        guard (1...64).contains(bytes.count), bytes[0] >= UInt8(ascii: "a"), bytes[0] <= UInt8(ascii: "z") else { return false }
        return bytes.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "-")
        }
    }
}
