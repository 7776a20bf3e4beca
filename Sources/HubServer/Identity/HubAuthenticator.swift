import Foundation
import HubAuth
import HubHTTP
import HubIO
import HubStore

/// The guard's credential stage: turns the request's `Authorization` / `X-API-Key` header into
/// a `Principal`, accepting only the kinds the route declares.
///
/// - `X-API-Key: dhk_…`, or a bearer token starting with `dhk_`: an API key. With scope
///   `admin` it is an admin principal on admin routes; on customer routes it must carry the
///   route's scope (else 403: the key is valid, its permissions too small).
/// - A bearer equal to `--admin-token` (compared in constant time): admin.
/// - A bearer shaped like a JWT (three dot-separated parts): a Supabase user, with its org
///   roles from the hub's membership records.
/// - Any other bearer: a device session token.
///
/// Every refusal is the same 401; failures are counted per client IP and an IP over its limit
/// gets 429 before any credential work (the services count their own failures the same way).
struct HubAuthenticator: RequestAuthenticator {
    let layer: IdentityLayer

    func authenticate(_ request: HTTPRequest, context: RequestContext, guard rule: RouteGuard) async throws -> Principal {
        let caller = Caller.anonymous(ip: context.clientIP, requestID: context.requestID)
        let bearer = Self.bearer(request)

        if let presented = request.headers["X-API-Key"] ?? bearer.flatMap({ $0.hasPrefix(APIKeyText.scheme) ? $0 : nil }) {
            guard !rule.accepts.isDisjoint(with: [.apiKey, .admin]) else { throw refuse("this route does not take API keys") }
            // The service counts and audits its own failures.
            // This loop's one-second memory of keys it authenticated, else the store.
            let memory = layer.apiKeys.forCurrent(context.loop)
            let key: APIKeyPrincipal
            if let known = memory?.value(for: presented, now: context.loop.now) {
                key = known
            } else {
                key = try await layer.noticingFailures(context) { try await layer.identity.apiKeys.authenticate(presented, by: caller) }
                memory?.remember(presented, key, now: context.loop.now)
            }
            // Only a hub-wide key (no org) is an admin: an org's key never reaches other orgs.
            if rule.accepts.contains(.admin), key.has(.admin), key.orgID == nil { return .admin(AdminPrincipal(keyID: key.keyID)) }
            guard rule.accepts.contains(.apiKey), key.orgID != nil else { throw Problem.forbidden("this API key cannot call this route") }
            if let scope = rule.scope, !key.scopes.contains(scope) {
                throw Problem.forbidden("this API key lacks the scope \(scope)")
            }
            return .apiKey(key)
        }

        guard let token = bearer else { throw refuse("missing credentials") }
        let failures = CredentialFailureLimiter(limiter: layer.identity.rateLimiter, logger: context.logger)
        let ipSubject = FailureSubject.ip(context.clientIP, layer.identity.configuration.rateLimits.failedAttemptsPerIP)
        // The shared failure budget is read only for a client this loop has seen fail lately:
        // a healthy client costs no counter reads, and one that fails is gated from its next
        // attempt on (every failure is counted in the shared counters either way).
        let loop = context.loop
        if layer.recentlyFailed(context.clientIP, on: loop) { try await failures.ensureAllowed([ipSubject]) }
        func failed() async {
            layer.noteFailure(context.clientIP, on: loop)
            await failures.recordFailure([ipSubject])
        }

        if rule.accepts.contains(.admin), let adminToken = layer.config.adminToken,
           // Digests, so that the comparison takes the same time whatever the token's length.
           ConstantTime.equals(HubCrypto.sha256(Array(token.utf8)), HubCrypto.sha256(Array(adminToken.utf8))) {
            return .admin(AdminPrincipal(keyID: nil))
        }
        if rule.accepts.contains(.user), Self.looksLikeJWT(token) {
            do {
                return .user(try await layer.authenticateUser(token: token, on: context.loop, caller: caller, gated: true))
            } catch let problem as Problem where problem.status == 401 {
                layer.noteFailure(context.clientIP, on: loop)
                throw refuse(problem.detail ?? "invalid token")
            }
        }
        if rule.accepts.contains(.device), !Self.looksLikeJWT(token) {
            do {
                return .device(try await layer.validateDeviceToken(token, on: context.loop))
            } catch let problem as Problem where problem.status == 401 {
                await failed()
                throw refuse(problem.detail ?? "invalid device token")
            }
        }
        await failed()
        throw refuse("invalid credentials")
    }

    private func refuse(_ detail: String) -> Problem {
        layer.metrics.count(layer.metrics.authFailures)
        return Problem.unauthenticated(detail)
    }

    /// The token of `Authorization: Bearer <token>` (scheme case-insensitive, surrounding
    /// spaces and tabs ignored), if any. On bytes: Foundation's trimming costs more than the
    /// whole token check on Linux.
    static func bearer(_ request: HTTPRequest) -> String? {
        guard let value = request.headers["Authorization"] else { return nil }
        var utf8 = Substring(value).utf8
        guard utf8.count > 7 else { return nil }
        let scheme = utf8.prefix(7)
        guard zip(scheme, "bearer ".utf8).allSatisfy({ ($0 | 0x20) == $1 }) else { return nil }
        utf8 = utf8.dropFirst(7)
        while let first = utf8.first, first == 0x20 || first == 0x09 { utf8 = utf8.dropFirst() }
        while let last = utf8.last, last == 0x20 || last == 0x09 { utf8 = utf8.dropLast() }
        return utf8.isEmpty ? nil : String(Substring(utf8))
    }

    static func looksLikeJWT(_ token: String) -> Bool {
        token.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: ".") ? 1 : 0) } == 2
    }
}

extension IdentityLayer {
    /// A Supabase user from its access token, with every credential rule of the hub: the
    /// client IP's failure budget is checked first (429 when used up; skipped when the caller
    /// already did, `gated`), and a refusal is counted against it and audited
    /// (`user.auth_failed`). HTTP guards and both ways into `/ws/customer` come through here.
    func authenticateUser(token: String, on loop: EventLoop, caller: Caller, gated: Bool = false) async throws -> UserPrincipal {
        let failures = CredentialFailureLimiter(limiter: identity.rateLimiter, logger: logger)
        let subject = FailureSubject.ip(caller.ip ?? "unknown", identity.configuration.rateLimits.failedAttemptsPerIP)
        if !gated { try await failures.ensureAllowed([subject]) }
        do {
            return try await verifyUser(token: token, on: loop)
        } catch let problem as Problem where problem.status == 401 {
            await failures.recordFailure([subject])
            await audit.recordBestEffort(.userAuthFailed, by: caller, orgID: nil, target: nil, outcome: .denied,
                                         detail: ["reason": problem.detail ?? ""])
            throw problem
        }
    }

    /// Verifies a Supabase access token on `loop` (with that loop's cache) and loads the user's
    /// org roles. An unknown `kid` triggers one rate-limited JWKS refetch and a second try.
    /// 401 `Problem` when the token is refused (the reason goes to the debug log, not to the
    /// client) or no Supabase verification is configured. The identity's `expiresAt` is the
    /// token's `exp` plus the configured leeway: when a socket on this token must close.
    private func verifyUser(token: String, on loop: EventLoop) async throws -> UserPrincipal {
        guard let verifier = jwtVerifier else { throw Problem.unauthenticated("this hub does not accept user tokens (no Supabase configuration)") }
        let cache = tokenCaches.forCurrent(loop)
        let now = Int64(Date().timeIntervalSince1970)
        var result = verifier.verify(token, nowSeconds: now, cache: cache)
        if case .failure(let rejection) = result, rejection.reason == .unknownKey, let refresher = jwksRefresher,
           await refresher.refreshForUnknownKid() {
            result = verifier.verify(token, nowSeconds: Int64(Date().timeIntervalSince1970), cache: cache)
        }
        switch result {
        case .failure(let rejection):
            metrics.count(metrics.jwtRejections)
            logger.debug("JWT refused", metadata: ["reason": .string("\(rejection)")])
            throw Problem.unauthenticated("invalid token")
        case .success(let user):
            guard !user.isAnonymous else {
                metrics.count(metrics.jwtRejections)
                throw Problem.unauthenticated("invalid token")
            }
            metrics.count(metrics.jwtVerifications)
            // Roles from this loop's one-second memory (`RecentLookups`), else the store.
            let memory = userRoles.forCurrent(loop)
            var roles: [UUID: MemberRole]
            if let known = memory?.value(for: user.userID, now: loop.now) {
                roles = known
            } else {
                roles = [:]
                for m in try await identity.orgs.memberships(userID: user.userID) { roles[m.orgID] = m.role }
                memory?.remember(user.userID, roles, now: loop.now)
            }
            return UserPrincipal(userID: user.userID, roles: roles, expiresAt: user.expiresAt + Int64(config.jwtLeeway))
        }
    }
}

/// The guard's rate-limit stage: one sliding-window budget per principal (`--requests-per-minute`),
/// anonymous callers per client IP.
struct PrincipalRateLimiter: RequestRateLimiter {
    let limiter: RateLimiter
    let rule: RateLimit
    /// One per loop, each touched only on its loop (see `RateLimitMemory`).
    let memories: LoopLocal<RateLimitMemory>

    /// Events a loop reserves per store call: 1 % of the limit, at most 50, so that what a
    /// loop may count without using stays small next to the limit (small limits stay exact).
    static func lease(for rule: RateLimit) -> Int { max(1, min(50, rule.limit / 100)) }

    func admit(_ principal: Principal, context: RequestContext) async throws {
        let key: String
        switch principal {
        case .anonymous: key = "req:ip:" + context.clientIP
        default: key = "req:" + principal.actorKey
        }
        let decision = try await limiter.check(key, rule, memory: memories.forCurrent(context.loop), lease: Self.lease(for: rule))
        if !decision.allowed { throw decision.problem }
    }
}

/// One value per event loop, handed out only on that loop's own thread.
final class LoopLocal<Value>: @unchecked Sendable {
    // @unchecked: `values[i]` is returned only to code running on loop i (checked against
    // `EventLoop.current`), so each value is touched by one thread.
    private let values: [Value]
    init(loops: [EventLoop], _ make: () -> Value) { values = loops.map { _ in make() } }

    /// The value of `loop` when called on it; nil elsewhere.
    func forCurrent(_ loop: EventLoop) -> Value? {
        guard EventLoop.current === loop, loop.index < values.count else { return nil }
        return values[loop.index]
    }
}
