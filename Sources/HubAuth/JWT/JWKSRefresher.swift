import Atomics
import Logging

/// Keeps a verifier's JWKS snapshot current, off the hot path: every `refreshInterval`, and on
/// demand when a token names an unknown `kid` (Supabase publishes a new signing key in the JWKS
/// before it signs with it, so a refresh usually already has it; the on-demand path covers a
/// rotation that happened since the last one).
///
/// A flood of tokens with bogus `kid`s must not make the hub hammer the JWKS endpoint: a fetch
/// (of any kind) starts at most once per `minRefetchInterval`, and concurrent requests share the
/// fetch in flight. A refetch that changes nothing keeps the current snapshot (and the loops'
/// cached verifications). During a rotation the JWKS lists the old and the new key, and the
/// snapshot holds both; a key leaves the snapshot when it leaves the JWKS. A failed fetch keeps
/// the current keys and is retried after `minRefetchInterval`.
///
/// Lifecycle: `start()` / `stop()` (or run `run()` in a task group; it returns when cancelled).
public actor JWKSRefresher {
    /// Returns the JWKS document (an HTTPS GET of `<supabase-url>/auth/v1/.well-known/jwks.json`
    /// or a file read).
    public typealias Fetch = @Sendable () async throws -> [UInt8]

    public nonisolated let verifier: SupabaseJWTVerifier
    public nonisolated let refreshInterval: Duration
    public nonisolated let minRefetchInterval: Duration
    private nonisolated let fetch: Fetch
    private nonisolated let now: @Sendable () -> Duration
    private nonisolated let logger: Logger

    private var lastFetchStart: Duration?
    private var lastFetchFailed = false
    private var inFlight: Task<Bool, Never>?
    private var runTask: Task<Void, Never>?
    /// Mirrors `lastFetchStart` (in nanoseconds) for the lock-free check in
    /// `requestRefreshForUnknownKid()`, which runs on an event loop.
    private nonisolated let lastFetchStartNanos = ManagedAtomic<Int64>(.min)
    private nonisolated let requestPending = ManagedAtomic<Bool>(false)

    /// Fetches started (successful or not).
    public private(set) var fetchCount = 0
    /// Fetches that failed (transport error or unusable document).
    public private(set) var failureCount = 0
    /// The last failure, nil after a success.
    public private(set) var lastError: String?

    /// - Parameters:
    ///   - now: a monotonic clock reading (tests inject one); default `ContinuousClock`.
    public init(verifier: SupabaseJWTVerifier, refreshInterval: Duration = .seconds(600),
                minRefetchInterval: Duration = .seconds(30),
                logger: Logger = Logger(label: "devicehub.auth.jwks"),
                now: (@Sendable () -> Duration)? = nil, fetch: @escaping Fetch) {
        self.verifier = verifier
        self.refreshInterval = refreshInterval
        self.minRefetchInterval = minRefetchInterval
        self.logger = logger
        self.fetch = fetch
        if let now {
            self.now = now
        } else {
            let origin = ContinuousClock.now
            self.now = { ContinuousClock.now - origin }
        }
    }

    /// Fetches now (startup, periodic refresh); shares a fetch already in flight. True when
    /// the verifier got a different key set.
    @discardableResult
    public func refresh() async -> Bool {
        if let inFlight { return await inFlight.value }
        return await startFetch()
    }

    /// For a token whose `kid` is unknown: fetches unless a fetch started less than
    /// `minRefetchInterval` ago. True when new keys were loaded (verify the token again).
    public func refreshForUnknownKid() async -> Bool {
        if let inFlight { return await inFlight.value }
        if let last = lastFetchStart, now() - last < minRefetchInterval { return false }
        return await startFetch()
    }

    /// The synchronous form for an event loop that just got `.unknownKey`: schedules
    /// `refreshForUnknownKid()` and returns at once. Cheap to call per rejected token: inside the
    /// rate-limit window it is one atomic load, and at most one such task exists at a time.
    public nonisolated func requestRefreshForUnknownKid() {
        let last = lastFetchStartNanos.load(ordering: .relaxed)
        if last != .min && Self.nanoseconds(now()) - last < Self.nanoseconds(minRefetchInterval) { return }
        guard requestPending.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        Task {
            _ = await self.refreshForUnknownKid()
            self.requestPending.store(false, ordering: .releasing)
        }
    }

    /// Refreshes periodically until cancelled: at once unless a fetch started within
    /// `refreshInterval`, then every `refreshInterval` (after a failure: `minRefetchInterval`).
    public func run() async {
        while !Task.isCancelled {
            let wait = lastFetchFailed ? minRefetchInterval : refreshInterval
            if let last = lastFetchStart {
                let elapsed = now() - last
                if elapsed < wait {
                    do { try await Task.sleep(for: wait - elapsed) } catch { return }
                    continue
                }
            }
            await refresh()
        }
    }

    /// Starts `run()` in a task owned by the refresher (no-op when already running).
    public func start() {
        guard runTask == nil else { return }
        runTask = Task { await self.run() }
    }

    /// Stops the periodic refresh (a fetch in flight completes).
    public func stop() {
        runTask?.cancel()
        runTask = nil
    }

    private func startFetch() async -> Bool {
        let started = now()
        lastFetchStart = started
        lastFetchStartNanos.store(Self.nanoseconds(started), ordering: .relaxed)
        fetchCount += 1
        let task = Task { await self.fetchAndInstall() }
        inFlight = task
        let changed = await task.value
        inFlight = nil
        return changed
    }

    private func fetchAndInstall() async -> Bool {
        let keys: JWKSKeys
        do {
            keys = try await JWKSKeys.parse(jwks: try await fetch())
        } catch {
            failureCount += 1
            lastFetchFailed = true
            lastError = "\(error)"
            logger.warning("JWKS refresh failed; keeping the current keys", metadata: ["error": "\(error)"])
            return false
        }
        lastFetchFailed = false
        lastError = nil
        if keys.hasSameKeys(as: verifier.keys) { return false }
        verifier.replaceKeys(keys)
        logger.info("JWKS keys replaced", metadata: [
            "kids": "\(keys.keyIDs)", "skipped": "\(keys.skipped.map(\.description))",
        ])
        return true
    }

    private static func nanoseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s &* 1_000_000_000 &+ atto / 1_000_000_000
    }
}
