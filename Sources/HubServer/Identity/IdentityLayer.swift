import Foundation
import HubAuth
import HubHTTP
import HubIO
import HubStore
import HubTelemetry
import Logging

/// The identity layer as a service: built once the stores run (it starts after them and stops
/// before them), it holds the identity services, the Supabase JWT verifier with its JWKS
/// refresher, and one verified-token cache per loop; a revoked device's socket is closed on the
/// node that holds it (`closeDeviceSockets`). It plugs the guard stages into the application.
final class IdentityLayer: HubService, @unchecked Sendable {
    // @unchecked: every `var` below is written once in `start()`, before the listeners bind
    // (the service group starts before `HubServer` accepts), and only read afterwards.
    let name = "identity"
    let config: ServerConfig
    let loops: [EventLoop]
    let deviceConnections: DeviceConnections
    /// Names the node holding a device's socket, where a revocation is sent.
    let presence: DevicePresence
    private let dataStores: DataStores
    private let application: HTTPApplication
    let logger: Logger
    let metrics: IdentityMetrics

    private(set) var identity: Identity!
    private(set) var audit: AuditLog!
    private(set) var stores: Stores!
    private(set) var jwtVerifier: SupabaseJWTVerifier?
    private(set) var jwksRefresher: JWKSRefresher?
    /// One verified-token cache per loop.
    let tokenCaches: LoopLocal<VerifiedTokenCache>
    /// Per loop: client IPs that failed a credential check lately.
    private let recentFailures: LoopLocal<RecentFailures>
    /// Per loop: device tokens validated within the last second.
    let deviceTokens: LoopLocal<RecentLookups<String, DevicePrincipal>>
    /// Per loop: users' org roles and API keys looked up within the last second.
    let userRoles: LoopLocal<RecentLookups<UUID, [UUID: MemberRole]>>
    let apiKeys: LoopLocal<RecentLookups<String, APIKeyPrincipal>>

    init(config: ServerConfig, loops: [EventLoop], dataStores: DataStores, application: HTTPApplication,
         deviceConnections: DeviceConnections, presence: DevicePresence, registry: MetricsRegistry, logger: Logger) {
        self.presence = presence
        self.config = config
        self.loops = loops
        self.dataStores = dataStores
        self.application = application
        self.deviceConnections = deviceConnections
        self.logger = logger
        metrics = IdentityMetrics(registry: registry)
        tokenCaches = LoopLocal(loops: loops) { VerifiedTokenCache() }
        recentFailures = LoopLocal(loops: loops) { RecentFailures() }
        deviceTokens = LoopLocal(loops: loops) { RecentLookups() }
        userRoles = LoopLocal(loops: loops) { RecentLookups() }
        apiKeys = LoopLocal(loops: loops) { RecentLookups() }
    }

    func start() async throws {
        guard let stores = dataStores.stores else { throw ConfigError(message: "identity: the stores did not start") }
        self.stores = stores
        var identityConfig = IdentityConfiguration(hashKey: try loadHashKey())
        identityConfig.activationCodeLifetime = .milliseconds(Int64(config.activationCodeTTL * 1000))
        identityConfig.deviceTokenTTL = .milliseconds(Int64(config.deviceTokenTTL * 1000))
        identityConfig.rateLimits.failedAttemptsPerIP = RateLimit.perMinute(config.authFailuresPerMinutePerIP)
        identityConfig.rateLimits.requestsPerPrincipal = RateLimit.perMinute(config.requestsPerMinute)
        identity = Identity(stores: stores, configuration: identityConfig, logger: logger)
        audit = AuditLog(records: stores.records, logger: logger)
        try await startJWT()

        // An embedder (or a test) may have installed its own stages.
        if application.authenticator == nil { application.authenticator = HubAuthenticator(layer: self) }
        if application.rateLimiter == nil {
            application.rateLimiter = PrincipalRateLimiter(limiter: identity.rateLimiter, rule: identityConfig.rateLimits.requestsPerPrincipal,
                                                           memories: LoopLocal(loops: loops) { RateLimitMemory() })
        }
    }

    func stop() async {
        await jwksRefresher?.stop()
    }

    /// Closes the device's sockets wherever they are: on this node at once; on the node that
    /// holds its socket (its presence) through that node's channel, never a message to every
    /// node. Pub/sub is at most once: a node that misses it closes the socket at the next token
    /// re-check. Other nodes that validated the device's token within the last second may
    /// accept it for the rest of that second (`validateDeviceToken`).
    func closeDeviceSockets(_ deviceID: UUID, reason: String) async {
        forgetDeviceTokens(deviceID)
        deviceConnections.close(deviceID: deviceID, code: .forbidden, reason: reason)
        guard config.redisURL != nil else { return }
        do {
            guard let node = try await presence.holder(deviceID), node != config.nodeID else { return }
            let message = NodeMessage(op: "revoke", device_id: deviceID.lowercasedString, reason: reason)
            try await stores.pubSub.publish(DeviceRouter.channel(node), Array(try JSONEncoder().encode(message)))
        } catch {
            logger.warning("device revocation not sent to the node holding its socket; it closes at its next token check",
                           metadata: ["device_id": .string(deviceID.uuidString), "error": .string("\(error)")])
        }
    }

    /// `--hash-key` when given; otherwise (embedded store only, `validate()` enforces it) a
    /// key generated once and kept next to the SQLite file.
    private func loadHashKey() throws -> HashKey {
        if let text = config.hashKey {
            do { return try HashKey(text: text) } catch { throw ConfigError(message: "--hash-key: \(error)") }
        }
        let path = (config.dataDirectory as NSString).appendingPathComponent("hash.key")
        do { return try HashKey.loadOrCreate(file: path) } catch { throw ConfigError(message: "hash key file \(path): \(error)") }
    }

    // MARK: JWT

    /// Builds the verifier when Supabase is configured (URL, JWKS file or HS256 secret) and
    /// starts the refresher, whose first fetch runs at once in the background: start-up never
    /// waits on Supabase, and a token that arrives before the keys waits for that fetch (its
    /// `kid` is unknown until then). A failed fetch is logged and retried.
    private func startJWT() async throws {
        guard config.supabaseURL != nil || config.supabaseJWKSFile != nil || config.supabaseJWTSecret != nil else {
            logger.notice("no Supabase configuration: customer JWTs are refused (set --supabase-url, --supabase-jwks-file or --supabase-jwt-secret)")
            return
        }
        var jwtConfig = config.supabaseURL.map { SupabaseJWTConfiguration.supabase(url: $0, hs256Secret: config.supabaseJWTSecret) }
            ?? SupabaseJWTConfiguration(issuer: nil, hs256Secret: config.supabaseJWTSecret)
        jwtConfig.leewaySeconds = Int64(config.jwtLeeway)
        do { try jwtConfig.validate() } catch { throw ConfigError(message: "Supabase JWT settings: \(error)") }
        let verifier = try await SupabaseJWTVerifier(configuration: jwtConfig)
        jwtVerifier = verifier
        guard let fetch = try JWKSSource.fetch(config: config, loop: loops[0], logger: logger) else { return }
        let refresher = JWKSRefresher(verifier: verifier, logger: logger, fetch: fetch)
        jwksRefresher = refresher
        await refresher.start()
    }
}

extension IdentityLayer {
    /// Whether this loop saw `ip` fail a credential check within the failure window. Loop
    /// thread only (off the loop: true, so the shared budget is always read).
    func recentlyFailed(_ ip: String, on loop: EventLoop) -> Bool {
        guard let memory = recentFailures.forCurrent(loop) else { return true }
        guard let at = memory.lastFailure[ip] else { return false }
        return loop.now &- at < RecentFailures.window
    }

    /// Runs a credential check of an identity service (which counts its failures in the shared
    /// budget itself) and remembers a refusal on this loop, so the guard reads the shared budget
    /// for this client from then on.
    func noticingFailures<T>(_ context: RequestContext, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let problem as Problem where problem.status == 401 || problem.status == 429 {
            noteFailure(context.clientIP, on: context.loop)
            throw problem
        }
    }

    func noteFailure(_ ip: String, on loop: EventLoop) {
        recentFailures.forCurrent(loop)?.note(ip, at: loop.now)
    }
}

extension IdentityLayer {
    /// The device a token speaks for: from this loop's one-second memory when it validated the
    /// token lately, else from the store (which also slides the token's TTL). A revocation
    /// reaches the memories at once on the node that made it and on the node holding its socket
    /// (the `revoke` node message); elsewhere a revoked token stays usable for at most one
    /// second (its sockets are re-checked at the next heartbeat).
    func validateDeviceToken(_ token: String, on loop: EventLoop) async throws -> DevicePrincipal {
        let memory = deviceTokens.forCurrent(loop)
        if let known = memory?.value(for: token, now: loop.now) { return known }
        let principal = try await identity.devices.validateToken(token)
        memory?.remember(token, principal, now: loop.now)
        return principal
    }

    /// Drops the device's tokens from every loop's memory.
    func forgetDeviceTokens(_ deviceID: UUID) {
        for loop in loops {
            loop.execute { [deviceTokens] in deviceTokens.forCurrent(loop)?.forget { $1.deviceID == deviceID } }
        }
    }

    /// Drops a user's remembered roles on every loop of this node (a membership changed here).
    func forgetUserRoles(_ userID: UUID) {
        for loop in loops {
            loop.execute { [userRoles] in userRoles.forCurrent(loop)?.forget { key, _ in key == userID } }
        }
    }

    /// Drops a remembered API key on every loop of this node (it was revoked here).
    func forgetAPIKey(_ keyID: UUID) {
        for loop in loops {
            loop.execute { [apiKeys] in apiKeys.forCurrent(loop)?.forget { $1.keyID == keyID } }
        }
    }
}

/// A loop's memory of failing client IPs, bounded: when full it starts over (which at worst
/// skips one shared-budget read per IP).
final class RecentFailures {
    /// The failure budget's window: 60 s.
    static let window: UInt64 = 60_000_000_000
    static let capacity = 10_000
    var lastFailure: [String: UInt64] = [:]

    func note(_ ip: String, at now: UInt64) {
        if lastFailure.count >= Self.capacity { lastFailure.removeAll(keepingCapacity: true) }
        lastFailure[ip] = now
    }
}

/// Counters of the identity layer (what an operator alerts on).
struct IdentityMetrics {
    let authFailures: Counter
    let jwtVerifications: Counter
    let jwtRejections: Counter

    init(registry: MetricsRegistry) {
        authFailures = registry.counter("devicehub_auth_failures_total", help: "Requests refused for a missing or bad credential (401).")
        jwtVerifications = registry.counter("devicehub_jwt_verifications_total", help: "Supabase JWTs accepted (verified or from the per-loop cache).")
        jwtRejections = registry.counter("devicehub_jwt_rejections_total", help: "Supabase JWTs refused.")
    }

    /// Counts on the calling loop's shard (identity work runs on the loops; elsewhere shard 0).
    func count(_ counter: Counter) {
        counter.increment(shard: EventLoop.current?.index ?? 0)
    }
}
