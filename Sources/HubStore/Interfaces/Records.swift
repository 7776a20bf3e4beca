import struct Foundation.Date
import struct Foundation.UUID

// The durable records of docs/product.md §2–§3, as the `RecordStore` reads and writes them. They mirror
// `protocol/sql/0001_initial.sql` (and its SQLite variant) column for column.
//
// Conventions shared by both backends (the conformance suite checks them):
// - Timestamps are kept to the millisecond: a `Date` reads back truncated to whole ms.
// - JSON columns (`metadata`, `arguments`, `result`, `detail`) are `String`s holding a JSON
//   value; they read back as an equal JSON value (PostgreSQL's jsonb may respace the text).
// - Text is UTF-8 without NUL (PostgreSQL cannot store U+0000 in text): a NUL anywhere in a
//   text field is `StoreError.invalidArgument`, on both backends. Bytes (`*Hash`) may hold anything.
// - Length checks of the schema (`name` 1...200 characters ...) are `invalidArgument`; a
//   duplicate unique value is `conflict`; a reference to a missing org/device/session is
//   `invalidArgument`.

public enum MemberRole: String, Sendable, CaseIterable, Comparable, Codable {
    case viewer, `operator`, approver, admin

    public var rank: Int {
        switch self {
        case .viewer: return 0
        case .operator: return 1
        case .approver: return 2
        case .admin: return 3
        }
    }

    public static func < (a: MemberRole, b: MemberRole) -> Bool { a.rank < b.rank }
}

public struct Org: Sendable, Equatable {
    public var id: UUID
    public var name: String
    /// `^[a-z0-9][a-z0-9-]{0,62}$`, unique.
    public var slug: String
    public var requireDistinctApprover: Bool
    public var autoApprovedKinds: [String]
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID = UUID(), name: String, slug: String, requireDistinctApprover: Bool = true,
                autoApprovedKinds: [String] = [], createdAt: Date = Date(), updatedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.slug = slug
        self.requireDistinctApprover = requireDistinctApprover
        self.autoApprovedKinds = autoApprovedKinds
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }
}

public struct Membership: Sendable, Equatable {
    public var orgID: UUID
    /// The Supabase user id (JWT `sub`).
    public var userID: UUID
    public var role: MemberRole

    public init(orgID: UUID, userID: UUID, role: MemberRole) {
        self.orgID = orgID
        self.userID = userID
        self.role = role
    }
}

public enum DeviceState: String, Sendable, CaseIterable, Codable {
    case provisioned, active, disabled
}

public struct Device: Sendable, Equatable {
    public var id: UUID
    public var orgID: UUID
    public var name: String
    public var state: DeviceState
    /// Hash of the device secret; required once `active`.
    public var secretHash: [UInt8]?
    public var lastSeenAt: Date?
    public var agentVersion: String?
    /// A JSON object.
    public var metadata: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID = UUID(), orgID: UUID, name: String, state: DeviceState = .provisioned, secretHash: [UInt8]? = nil,
                lastSeenAt: Date? = nil, agentVersion: String? = nil, metadata: String = "{}", createdAt: Date = Date(), updatedAt: Date? = nil) {
        self.id = id
        self.orgID = orgID
        self.name = name
        self.state = state
        self.secretHash = secretHash
        self.lastSeenAt = lastSeenAt
        self.agentVersion = agentVersion
        self.metadata = metadata
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }
}

/// Fields `updateDevice` changes; nil leaves a field as it is. `updatedAt` is always set.
public struct DeviceChange: Sendable, Equatable {
    public var name: String?
    public var state: DeviceState?
    public var secretHash: [UInt8]?
    public var lastSeenAt: Date?
    public var agentVersion: String?
    public var metadata: String?
    public var updatedAt: Date

    public init(name: String? = nil, state: DeviceState? = nil, secretHash: [UInt8]? = nil, lastSeenAt: Date? = nil,
                agentVersion: String? = nil, metadata: String? = nil, updatedAt: Date = Date()) {
        self.name = name
        self.state = state
        self.secretHash = secretHash
        self.lastSeenAt = lastSeenAt
        self.agentVersion = agentVersion
        self.metadata = metadata
        self.updatedAt = updatedAt
    }
}

public struct ActivationCode: Sendable, Equatable {
    public var id: UUID
    public var orgID: UUID
    public var deviceID: UUID
    /// Hash of the code; unique.
    public var codeHash: [UInt8]
    public var expiresAt: Date
    public var attempts: Int
    public var maxAttempts: Int
    public var usedAt: Date?
    public var createdBy: UUID?
    public var createdAt: Date

    public init(id: UUID = UUID(), orgID: UUID, deviceID: UUID, codeHash: [UInt8], expiresAt: Date, attempts: Int = 0,
                maxAttempts: Int = 5, usedAt: Date? = nil, createdBy: UUID? = nil, createdAt: Date = Date()) {
        self.id = id
        self.orgID = orgID
        self.deviceID = deviceID
        self.codeHash = codeHash
        self.expiresAt = expiresAt
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.usedAt = usedAt
        self.createdBy = createdBy
        self.createdAt = createdAt
    }
}

/// What `redeemActivationCode` found.
public enum ActivationRedemption: Sendable, Equatable {
    /// The code was live; it is now used (`usedAt` set). Exactly one concurrent caller gets this.
    case redeemed(ActivationCode)
    case notFound
    case expired(ActivationCode)
    case alreadyUsed(ActivationCode)
}

public enum SessionState: String, Sendable, CaseIterable, Codable {
    case pendingApproval = "pending_approval"
    case active, closed, rejected, expired
}

public struct DiagnosticSession: Sendable, Equatable {
    public var id: UUID
    public var orgID: UUID
    public var deviceID: UUID
    public var requestedBy: UUID
    /// 1...2000 characters.
    public var reason: String
    public var state: SessionState
    public var decidedBy: UUID?
    public var decidedAt: Date?
    public var decisionNote: String?
    public var expiresAt: Date?
    public var closedAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID = UUID(), orgID: UUID, deviceID: UUID, requestedBy: UUID, reason: String,
                state: SessionState = .pendingApproval, decidedBy: UUID? = nil, decidedAt: Date? = nil,
                decisionNote: String? = nil, expiresAt: Date? = nil, closedAt: Date? = nil,
                createdAt: Date = Date(), updatedAt: Date? = nil) {
        self.id = id
        self.orgID = orgID
        self.deviceID = deviceID
        self.requestedBy = requestedBy
        self.reason = reason
        self.state = state
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
        self.decisionNote = decisionNote
        self.expiresAt = expiresAt
        self.closedAt = closedAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }
}

/// Fields `updateSession` changes; nil leaves a field as it is.
public struct SessionChange: Sendable, Equatable {
    public var state: SessionState?
    public var decidedBy: UUID?
    public var decidedAt: Date?
    public var decisionNote: String?
    public var expiresAt: Date?
    public var closedAt: Date?
    public var updatedAt: Date

    public init(state: SessionState? = nil, decidedBy: UUID? = nil, decidedAt: Date? = nil, decisionNote: String? = nil,
                expiresAt: Date? = nil, closedAt: Date? = nil, updatedAt: Date = Date()) {
        self.state = state
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
        self.decisionNote = decisionNote
        self.expiresAt = expiresAt
        self.closedAt = closedAt
        self.updatedAt = updatedAt
    }
}

public enum CommandState: String, Sendable, CaseIterable, Codable {
    case pendingApproval = "pending_approval"
    case queued, claimed, succeeded, failed, rejected, canceled, expired
    case deadLettered = "dead_lettered"

    public var isTerminal: Bool {
        switch self {
        case .pendingApproval, .queued, .claimed: return false
        default: return true
        }
    }
}

public struct CommandRecord: Sendable, Equatable {
    public var id: UUID
    /// Assigned by the store on insert (the value passed in is ignored): increasing, FIFO order.
    public var seq: Int64
    public var orgID: UUID
    public var sessionID: UUID
    public var deviceID: UUID
    /// 1...100 characters.
    public var kind: String
    /// A JSON value.
    public var arguments: String
    public var priority: QueuePriority
    public var state: CommandState
    public var needsApproval: Bool
    /// A user id or an API key id.
    public var proposedBy: String
    public var decidedBy: UUID?
    public var decidedAt: Date?
    public var ttlSeconds: Int
    public var expiresAt: Date
    public var maxAttempts: Int
    public var visibilityTimeoutSeconds: Int
    public var attempts: Int
    public var leaseToken: UUID?
    public var leaseExpiresAt: Date?
    public var leasedAt: Date?
    public var exitCode: Int?
    /// At most 65,536 characters.
    public var outputSummary: String?
    /// A JSON value.
    public var result: String?
    public var finishedAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
    /// The proposer's idempotency key: 1...128 characters, unique within the session (a second
    /// insert with the same key is `.conflict`; `command(sessionID:idempotencyKey:)` finds the
    /// first). Nil: none.
    public var idempotencyKey: String?

    public init(id: UUID = UUID(), seq: Int64 = 0, orgID: UUID, sessionID: UUID, deviceID: UUID, kind: String,
                arguments: String = "{}", priority: QueuePriority = .default, state: CommandState = .pendingApproval,
                needsApproval: Bool = true, proposedBy: String, decidedBy: UUID? = nil, decidedAt: Date? = nil,
                ttlSeconds: Int = 3600, expiresAt: Date, maxAttempts: Int = 3, visibilityTimeoutSeconds: Int = 30,
                attempts: Int = 0, leaseToken: UUID? = nil, leaseExpiresAt: Date? = nil, leasedAt: Date? = nil,
                exitCode: Int? = nil, outputSummary: String? = nil, result: String? = nil, finishedAt: Date? = nil,
                createdAt: Date = Date(), updatedAt: Date? = nil, idempotencyKey: String? = nil) {
        self.id = id
        self.seq = seq
        self.orgID = orgID
        self.sessionID = sessionID
        self.deviceID = deviceID
        self.kind = kind
        self.arguments = arguments
        self.priority = priority
        self.state = state
        self.needsApproval = needsApproval
        self.proposedBy = proposedBy
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
        self.ttlSeconds = ttlSeconds
        self.expiresAt = expiresAt
        self.maxAttempts = maxAttempts
        self.visibilityTimeoutSeconds = visibilityTimeoutSeconds
        self.attempts = attempts
        self.leaseToken = leaseToken
        self.leaseExpiresAt = leaseExpiresAt
        self.leasedAt = leasedAt
        self.exitCode = exitCode
        self.outputSummary = outputSummary
        self.result = result
        self.finishedAt = finishedAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.idempotencyKey = idempotencyKey
    }
}

/// What a command row must look like for `updateCommand` to change it; every given part must
/// hold (nil: no requirement). A row that exists but does not match is a `.conflict`.
public struct CommandCondition: Sendable, Equatable {
    /// The row's state is one of these (an empty set matches nothing).
    public var states: Set<CommandState>?
    /// The row's `attempts` is at most this: so that a late writer (a claim recorded after
    /// the queue already redelivered) cannot move the record back.
    public var attemptsAtMost: Int?
    /// The row holds this lease token (a row without a lease never matches).
    public var leaseToken: UUID?

    public init(states: Set<CommandState>? = nil, attemptsAtMost: Int? = nil, leaseToken: UUID? = nil) {
        self.states = states
        self.attemptsAtMost = attemptsAtMost
        self.leaseToken = leaseToken
    }
}

/// One group of `queueDepth`: an org's unfinished commands in one state and priority class.
public struct QueueDepthRow: Sendable, Equatable {
    public var orgID: UUID
    public var state: CommandState
    public var priority: QueuePriority
    public var count: Int
    /// The oldest command's `createdAt` in the group.
    public var oldestCreatedAt: Date

    public init(orgID: UUID, state: CommandState, priority: QueuePriority, count: Int, oldestCreatedAt: Date) {
        self.orgID = orgID
        self.state = state
        self.priority = priority
        self.count = count
        self.oldestCreatedAt = oldestCreatedAt
    }
}

/// Fields `updateCommand` changes; nil leaves a field as it is.
public struct CommandChange: Sendable, Equatable {
    public enum Lease: Sendable, Equatable {
        case set(token: UUID, expiresAt: Date, leasedAt: Date)
        /// Clears token, deadline and leasedAt (the lease lapsed or ended).
        case clear
    }

    public var state: CommandState?
    public var decidedBy: UUID?
    public var decidedAt: Date?
    public var attempts: Int?
    public var lease: Lease?
    public var exitCode: Int?
    public var outputSummary: String?
    public var result: String?
    public var finishedAt: Date?
    public var updatedAt: Date

    public init(state: CommandState? = nil, decidedBy: UUID? = nil, decidedAt: Date? = nil, attempts: Int? = nil,
                lease: Lease? = nil, exitCode: Int? = nil, outputSummary: String? = nil, result: String? = nil,
                finishedAt: Date? = nil, updatedAt: Date = Date()) {
        self.state = state
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
        self.attempts = attempts
        self.lease = lease
        self.exitCode = exitCode
        self.outputSummary = outputSummary
        self.result = result
        self.finishedAt = finishedAt
        self.updatedAt = updatedAt
    }
}

/// One entry of a command's history (`queued`, `claimed`, `lease_lapsed`, `dead_lettered` ...).
public struct CommandEvent: Sendable, Equatable {
    /// Assigned by the store on append (increasing).
    public var id: Int64
    public var commandID: UUID
    /// 1...64 characters.
    public var event: String
    public var fromState: CommandState?
    public var toState: CommandState?
    public var actor: String?
    /// A JSON object.
    public var detail: String
    public var at: Date

    public init(id: Int64 = 0, commandID: UUID, event: String, fromState: CommandState? = nil, toState: CommandState? = nil,
                actor: String? = nil, detail: String = "{}", at: Date = Date()) {
        self.id = id
        self.commandID = commandID
        self.event = event
        self.fromState = fromState
        self.toState = toState
        self.actor = actor
        self.detail = detail
        self.at = at
    }
}

public enum LogStream: String, Sendable, CaseIterable, Codable {
    case stdout, stderr
}

public struct ExecutionLogLine: Sendable, Equatable {
    public var commandID: UUID
    /// The device's sequence number; unique per command (a repeated seq is ignored: devices resend).
    public var seq: Int64
    public var stream: LogStream
    public var line: String
    public var at: Date

    public init(commandID: UUID, seq: Int64, stream: LogStream, line: String, at: Date = Date()) {
        self.commandID = commandID
        self.seq = seq
        self.stream = stream
        self.line = line
        self.at = at
    }
}

public enum AuditActorType: String, Sendable, CaseIterable, Codable {
    case user, device
    case apiKey = "api_key"
    case system, anonymous
}

public enum AuditOutcome: String, Sendable, CaseIterable, Codable {
    case success, denied, failure
}

public struct AuditEntry: Sendable, Equatable {
    /// Assigned by the store on append (increasing).
    public var id: Int64
    public var at: Date
    public var orgID: UUID?
    public var actorType: AuditActorType
    public var actorID: String?
    /// 1...100 characters, e.g. `session.approve`, `device.auth_failed`.
    public var action: String
    public var targetType: String?
    public var targetID: String?
    public var outcome: AuditOutcome
    public var requestID: String?
    /// An IPv4 or IPv6 address in text form.
    public var ip: String?
    /// A JSON object.
    public var detail: String

    public init(id: Int64 = 0, at: Date = Date(), orgID: UUID? = nil, actorType: AuditActorType, actorID: String? = nil,
                action: String, targetType: String? = nil, targetID: String? = nil, outcome: AuditOutcome = .success,
                requestID: String? = nil, ip: String? = nil, detail: String = "{}") {
        self.id = id
        self.at = at
        self.orgID = orgID
        self.actorType = actorType
        self.actorID = actorID
        self.action = action
        self.targetType = targetType
        self.targetID = targetID
        self.outcome = outcome
        self.requestID = requestID
        self.ip = ip
        self.detail = detail
    }
}

/// The result of a conditional update: only rows in one of the expected states change.
public enum RecordUpdate<Record: Sendable & Equatable>: Sendable, Equatable {
    case updated(Record)
    /// The row exists but was not in an expected state: unchanged, as it is now.
    case conflict(current: Record)
    case notFound
}
