import struct Foundation.Date
import struct Foundation.UUID

/// The durable records (PostgreSQL, or SQLite embedded): orgs and members, devices and their
/// activation codes, API keys, diagnostic sessions, commands with their events and execution
/// logs, and the audit trail. See `Records.swift` for the conventions both backends share.
///
/// State changes are conditional (`expected` states, checked and written in one statement or
/// transaction), so two nodes racing on an approval cannot both win.
public protocol RecordStore: Sendable {
    // MARK: orgs and members
    func insertOrg(_ org: Org) async throws(StoreError)
    func org(id: UUID) async throws(StoreError) -> Org?
    func org(slug: String) async throws(StoreError) -> Org?
    /// Sets the given policy fields (nil leaves one as it is) and `updatedAt = at`; with neither
    /// given nothing is written. Returns the org as it is now, nil when there is no such org.
    /// `autoApprovedKinds`: at most `StoreLimits.maxBatch` kinds of 1...100 characters, stored
    /// in the order given.
    func updateOrgPolicy(id: UUID, requireDistinctApprover: Bool?, autoApprovedKinds: [String]?, at: Date) async throws(StoreError) -> Org?
    /// Adds the member or changes its role.
    func setMember(_ membership: Membership) async throws(StoreError)
    /// True when the member existed.
    @discardableResult
    func removeMember(orgID: UUID, userID: UUID) async throws(StoreError) -> Bool
    /// The orgs a user belongs to (every customer request asks this), ordered by org id.
    func memberships(userID: UUID) async throws(StoreError) -> [Membership]
    /// An org's members, ordered by user id.
    func members(orgID: UUID) async throws(StoreError) -> [Membership]
    /// Orgs by id (for `GET /customer/orgs`), ordered by id; ids not found are left out. At
    /// most `StoreLimits.maxBatch` ids (more is `invalidArgument`); repeated ids count once.
    func orgs(ids: [UUID]) async throws(StoreError) -> [Org]

    // MARK: devices
    func insertDevice(_ device: Device) async throws(StoreError)
    func device(id: UUID) async throws(StoreError) -> Device?
    /// An org's devices in `state` (nil: any) ordered by (name, id), after the cursor `after`
    /// (the last page's last device), at most `limit` (1...`StoreLimits.maxBatch`).
    func devices(orgID: UUID, state: DeviceState?, after: (name: String, id: UUID)?, limit: Int) async throws(StoreError) -> [Device]
    /// Applies `change` when the device's state is in `expected` (nil: any state).
    func updateDevice(id: UUID, expected: Set<DeviceState>?, change: DeviceChange) async throws(StoreError) -> RecordUpdate<Device>

    // MARK: activation codes
    /// Stores a new code for its device; a live (unused) code of the same device is marked used
    /// first (one live code per device).
    func insertActivationCode(_ code: ActivationCode) async throws(StoreError)
    /// Finds the code by hash and, when it is unused and `expiresAt > now`, marks it used, in one
    /// atomic step.
    func redeemActivationCode(codeHash: [UInt8], now: Date) async throws(StoreError) -> ActivationRedemption

    // MARK: API keys
    /// A duplicate prefix (or id) is `.conflict`; an unknown org is `invalidArgument`.
    func insertAPIKey(_ key: APIKeyRecord) async throws(StoreError)
    func apiKey(id: UUID) async throws(StoreError) -> APIKeyRecord?
    /// The key with this prefix; nil also for a string no stored prefix can be (wrong length,
    /// NUL), since callers pass what a client presented.
    func apiKey(prefix: String) async throws(StoreError) -> APIKeyRecord?
    /// Keys of one org (nil: hub-wide keys, those without an org), newest first (createdAt
    /// descending, then id ascending), at most `limit` (1...`StoreLimits.maxBatch`). Revoked
    /// keys are listed too.
    func apiKeys(orgID: UUID?, limit: Int) async throws(StoreError) -> [APIKeyRecord]
    /// Sets revokedAt when not yet revoked; `.conflict(current:)` when already revoked.
    func revokeAPIKey(id: UUID, at: Date) async throws(StoreError) -> RecordUpdate<APIKeyRecord>
    /// Sets lastUsedAt (no-op when the key does not exist).
    func touchAPIKey(id: UUID, at: Date) async throws(StoreError)

    // MARK: diagnostic sessions
    func insertSession(_ session: DiagnosticSession) async throws(StoreError)
    func session(id: UUID) async throws(StoreError) -> DiagnosticSession?
    /// An org's sessions in `states` (nil: all; empty: none), of `deviceID` when given, newest
    /// first (createdAt descending, then id descending), strictly after the cursor `before` in
    /// that order (the last page's last session: its createdAt and id), at most `limit`
    /// (1...`StoreLimits.maxBatch`).
    func sessions(orgID: UUID, states: Set<SessionState>?, deviceID: UUID?, before: (createdAt: Date, id: UUID)?,
                  limit: Int) async throws(StoreError) -> [DiagnosticSession]
    /// Sessions still `pendingApproval` whose `expiresAt <= now` (the approval window lapsed),
    /// earliest `expiresAt` first (then id), at most `limit`: what the reaper expires.
    func expiredPendingSessions(now: Date, limit: Int) async throws(StoreError) -> [DiagnosticSession]
    func updateSession(id: UUID, expected: Set<SessionState>?, change: SessionChange) async throws(StoreError) -> RecordUpdate<DiagnosticSession>

    // MARK: commands
    /// Inserts the command and returns it with its `seq` assigned. `event`, when given, is
    /// appended in the same transaction.
    func insertCommand(_ command: CommandRecord, event: CommandEvent?) async throws(StoreError) -> CommandRecord
    func command(id: UUID) async throws(StoreError) -> CommandRecord?
    /// The session's command proposed with this idempotency key; nil when there is none (also
    /// for a key no command can have: empty, over 128 characters, NUL).
    func command(sessionID: UUID, idempotencyKey: String) async throws(StoreError) -> CommandRecord?
    /// A session's commands in `states` (nil: all; empty: none) by seq, after `afterSeq`, at
    /// most `limit` (1...`StoreLimits.maxBatch`).
    func commands(sessionID: UUID, states: Set<CommandState>?, afterSeq: Int64, limit: Int) async throws(StoreError) -> [CommandRecord]
    /// The device's commands in `pendingApproval`, `queued` or `claimed`: what its queue cap counts.
    func unfinishedCommandCount(deviceID: UUID) async throws(StoreError) -> Int
    /// Commands still `pendingApproval` whose `expiresAt <= now` (their TTL lapsed before
    /// anyone decided), by seq, at most `limit`: what the reaper expires.
    func expiredPendingCommands(now: Date, limit: Int) async throws(StoreError) -> [CommandRecord]
    /// Unfinished commands (`pendingApproval`, `queued`, `claimed`) whose TTL has not lapsed at
    /// `now`, counted per org, state and priority, with the oldest `createdAt` of each group;
    /// of the orgs in `orgIDs` (nil: every org; at most `StoreLimits.maxBatch` ids). Ordered by
    /// org id, then state (pendingApproval, queued, claimed), then priority (critical, default,
    /// bulk); groups without commands are left out.
    func queueDepth(orgIDs: [UUID]?, now: Date) async throws(StoreError) -> [QueueDepthRow]
    /// Commands in `queued` or `claimed` state by seq, after `afterSeq`, at most `limit`: what the
    /// hot queue is rebuilt from.
    func unfinishedCommands(afterSeq: Int64, limit: Int) async throws(StoreError) -> [CommandRecord]
    /// Applies `change` when the command matches `condition` (checked and written in one
    /// statement) and, when it does, appends `event` in the same transaction.
    func updateCommand(id: UUID, where condition: CommandCondition, change: CommandChange, event: CommandEvent?) async throws(StoreError) -> RecordUpdate<CommandRecord>
    /// Returns the event with its id assigned.
    func appendCommandEvent(_ event: CommandEvent) async throws(StoreError) -> CommandEvent
    /// A command's events in order.
    func commandEvents(commandID: UUID) async throws(StoreError) -> [CommandEvent]

    // MARK: execution logs
    /// Stores the lines; a line whose (commandID, seq) is already stored is ignored. Returns how
    /// many were new.
    @discardableResult
    func appendLogLines(_ lines: [ExecutionLogLine]) async throws(StoreError) -> Int
    /// As `appendLogLines`, and says which lines were new: their seqs, in the order given (a
    /// seq repeated within the batch counts once). Several commands' lines may share a batch
    /// only when their seqs do not collide; the hub writes one command per call.
    func appendLogLinesReportingNew(_ lines: [ExecutionLogLine]) async throws(StoreError) -> [Int64]
    /// A command's lines by seq, after `afterSeq`, at most `limit`.
    func logLines(commandID: UUID, afterSeq: Int64, limit: Int) async throws(StoreError) -> [ExecutionLogLine]

    // MARK: audit
    /// Returns the entry with its id assigned.
    @discardableResult
    func appendAudit(_ entry: AuditEntry) async throws(StoreError) -> AuditEntry
    /// Entries of one org (nil: hub-wide entries of any org), newest first, with ids below
    /// `beforeID` (nil: from the newest), at most `limit`.
    func audit(orgID: UUID?, beforeID: Int64?, limit: Int) async throws(StoreError) -> [AuditEntry]
}

extension RecordStore {
    /// Applies `change` when the command's state is in `expected` (nil: any): the
    /// `CommandCondition` with only `states`.
    public func updateCommand(id: UUID, expected: Set<CommandState>?, change: CommandChange, event: CommandEvent?) async throws(StoreError) -> RecordUpdate<CommandRecord> {
        try await updateCommand(id: id, where: CommandCondition(states: expected), change: change, event: event)
    }
}
