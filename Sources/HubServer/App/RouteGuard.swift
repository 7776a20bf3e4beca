import HubAuth
import HubHTTP

/// Which credentials a route takes. A request that presents none of them, or a bad one, gets
/// 401 `unauthenticated` before the handler runs.
public struct CredentialKinds: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `Authorization: Bearer <device token>`.
    public static let device = CredentialKinds(rawValue: 1)
    /// `Authorization: Bearer <Supabase JWT>`.
    public static let user = CredentialKinds(rawValue: 2)
    /// `X-API-Key: <key>` or `Authorization: Bearer <key>` (keys start with `dhk_`).
    public static let apiKey = CredentialKinds(rawValue: 4)
    /// `--admin-token`, or an API key with scope `admin`.
    public static let admin = CredentialKinds(rawValue: 8)
}

/// How a route is rate limited (the guard's last stage, before the handler).
public enum RateLimitClass: Sendable, Equatable {
    /// No limit beyond the connection limits (operations endpoints).
    case none
    /// Per principal (device, user, API key); anonymous callers per IP.
    case perPrincipal
}

/// A route's access rule, declared with the route and enforced by the application before the
/// handler runs: authenticate (once, into a typed `Principal` on the context), check the API
/// key scope, then rate-limit.
///
///     app.route(.post, "/api/v1/customer/devices/provision", guard: .customer(scope: "devices:write")) { req, ctx in ... }
public struct RouteGuard: Sendable, Equatable {
    public var accepts: CredentialKinds
    /// The scope an API key must carry for this route (user JWTs are checked by role, per org,
    /// in the handler through `RequestContext.authorize`).
    public var scope: String?
    public var rateLimit: RateLimitClass

    public init(accepts: CredentialKinds, scope: String? = nil, rateLimit: RateLimitClass = .perPrincipal) {
        self.accepts = accepts
        self.scope = scope
        self.rateLimit = rateLimit
    }

    /// Anyone; still rate-limited per IP.
    public static let anonymous = RouteGuard(accepts: [])
    /// Anyone, no rate limit (operations endpoints a load balancer polls).
    public static let open = RouteGuard(accepts: [], rateLimit: .none)
    /// A device agent with a session token.
    public static let device = RouteGuard(accepts: .device)
    /// The admin API.
    public static let admin = RouteGuard(accepts: .admin)
    /// The customer API: a user JWT, or an API key with `scope`.
    public static func customer(scope: String) -> RouteGuard {
        RouteGuard(accepts: [.user, .apiKey], scope: scope)
    }
}

/// Resolves a request's credentials into a principal. The identity layer implements it; the
/// application calls it once per request for routes that take credentials.
public protocol RequestAuthenticator: Sendable {
    /// The principal, or a thrown `Problem` (401 `unauthenticated`, 403 for a key without the
    /// route's scope, 429 when failed attempts from this IP are over their limit).
    func authenticate(_ request: HTTPRequest, context: RequestContext, guard: RouteGuard) async throws -> Principal
}

/// The rate-limit stage: throws a 429 `Problem` (with `retryAfterSeconds`) when the caller is
/// over its limit.
public protocol RequestRateLimiter: Sendable {
    func admit(_ principal: Principal, context: RequestContext) async throws
}

extension Problem {
    /// 404 with the one body used for "does not exist" and "not in your orgs" alike (the
    /// other identity problems are spelled in HubAuth's `IdentityProblems`).
    public static func noSuch(_ what: String) -> Problem {
        Problem(status: 404, code: "not_found", detail: "no such \(what)")
    }
}
