/// The queue and approval settings a hub runs with (flags in `ServerConfig`).
public struct CommandsConfiguration: Sendable, Equatable {
    /// How long a session may wait for its approval before it ends as `expired`.
    public var sessionApprovalTTL: Duration = .seconds(3600)
    /// Unfinished commands (pending approval, queued, claimed) one device may have; more is 429 `queue_full`.
    public var deviceQueueCap: Int = 1000
    /// A proposal with a known idempotency key within this window returns the first command.
    public var idempotencyWindow: Duration = .seconds(24 * 3600)
    /// Defaults of a proposal.
    public var defaultTTLSeconds = 3600
    public var defaultMaxAttempts = 3
    public var defaultVisibilityTimeoutSeconds = 30
    /// Longest long poll of `claim`.
    public var maxWaitSeconds = 20
    /// How often a node looks for the queue marker (a flushed Redis is noticed within this).
    public var guardInterval: Duration = .milliseconds(500)
    /// How often every unfinished record is checked against the queue (repairs a crash between
    /// the record write and the enqueue).
    public var reconcileInterval: Duration = .seconds(300)

    public init() {}
}
