import Foundation
import HubHTTP
import HubStore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Limits on failed credential attempts, and on request rates once authenticated.
public struct RateLimitPolicy: Sendable, Equatable {
    /// Failed credential attempts (any kind: activation codes, device secrets, API keys) from
    /// one client address (an IPv6 client's /64).
    public var failedAttemptsPerIP = RateLimit.perMinute(100)
    /// Failed authentications naming one device.
    public var failedAttemptsPerDevice = RateLimit.perMinute(10)
    /// Failed registrations with one activation code, over its whole life (24 h).
    public var failedAttemptsPerActivationCode = RateLimit(limit: 5, window: .seconds(86_400), kind: .fixed)
    /// Requests per authenticated principal (API key, user, device); for the HTTP layer.
    public var requestsPerPrincipal = RateLimit.perMinute(600)

    public init() {}
}

/// One budget a failed attempt is counted against: a counter key and its rule.
public struct FailureSubject: Sendable, Equatable {
    public var key: String
    public var rule: RateLimit

    public init(key: String, rule: RateLimit) {
        self.key = key
        self.rule = rule
    }

    /// The client address's budget. An IPv6 address counts as its /64 (one customer line
    /// gets a whole /64, so per-address counting would be no limit at all); anything that
    /// does not parse as an address counts under its own text, truncated.
    public static func ip(_ address: String, _ rule: RateLimit) -> FailureSubject {
        FailureSubject(key: "fail:ip:" + ClientAddress.rateLimitKey(address), rule: rule)
    }

    public static func device(_ id: UUID, _ rule: RateLimit) -> FailureSubject {
        FailureSubject(key: "fail:dev:" + id.lowercasedString, rule: rule)
    }

    /// One activation code's budget, by its keyed hash (the plaintext never reaches the store).
    public static func activationCode(hash: [UInt8], _ rule: RateLimit) -> FailureSubject {
        FailureSubject(key: "fail:code:" + HubCrypto.hex(hash), rule: rule)
    }
}

/// Failure-only counting for credential checks: a correct credential costs nothing, each
/// wrong one is counted against every subject (IP, device, code), and while any subject is
/// over its budget, attempts are refused with 429 before the credential is even looked at.
///
/// The gate (`ensureAllowed`) fails closed: if the counters cannot be read the store error
/// propagates (503) rather than letting unlimited guesses through. Counting (`recordFailure`)
/// is best effort: the caller is answering 401 either way.
public struct CredentialFailureLimiter: Sendable {
    public let limiter: RateLimiter
    let logger: Logger

    public init(limiter: RateLimiter, logger: Logger) {
        self.limiter = limiter
        self.logger = logger
    }

    /// Throws the 429 `Problem` when any subject has used up its budget (with the longest
    /// `retryAfterSeconds` among them); store failures as `StoreError`.
    public func ensureAllowed(_ subjects: [FailureSubject]) async throws {
        var worst: RateLimitDecision?
        for subject in subjects {
            let decision = try await limiter.peek(subject.key, subject.rule)
            if !decision.allowed, decision.retryAfterSeconds > (worst?.retryAfterSeconds ?? 0) { worst = decision }
        }
        if let worst { throw worst.problem }
    }

    /// Counts one failure against each subject; never throws (logged instead).
    public func recordFailure(_ subjects: [FailureSubject]) async {
        for subject in subjects {
            do {
                try await limiter.record(subject.key, subject.rule)
            } catch {
                logger.warning("failed attempt not counted", metadata: ["key": .string(subject.key), "error": .string(error.description)])
            }
        }
    }
}

/// Client addresses as rate-limit keys.
enum ClientAddress {
    /// IPv4 as written (dotted quad); IPv6 (and IPv4-mapped IPv6) reduced to the /64 network,
    /// in hex; anything else, its first 64 bytes.
    static func rateLimitKey(_ address: String) -> String {
        var v6 = in6_addr()
        if address.contains(":"), inet_pton(AF_INET6, address, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            // ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket: count it as that IPv4.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                return bytes[12..<16].map { String($0) }.joined(separator: ".")
            }
            return "v6:" + HubCrypto.hex(Array(bytes[0..<8])) + "::/64"
        }
        return String(decoding: address.utf8.prefix(64), as: UTF8.self)
    }
}
