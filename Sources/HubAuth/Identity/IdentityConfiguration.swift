import Foundation
import HubStore
import Logging

/// Settings of the identity services (one value for all of them).
public struct IdentityConfiguration: Sendable {
    /// Key of the activation codes' keyed hash (`--hash-key`, or `HashKey.loadOrCreate`).
    public var hashKey: HashKey
    /// How long a new activation code stays redeemable: 24 h.
    public var activationCodeLifetime: Duration = .seconds(86_400)
    /// A device token's sliding TTL: each validation extends it to this from now. 1 h.
    public var deviceTokenTTL: Duration = .seconds(3_600)
    public var rateLimits = RateLimitPolicy()
    /// An API key's `last_used_at` is written at most this often per key per process.
    public var apiKeyTouchInterval: Duration = .seconds(60)

    public init(hashKey: HashKey) { self.hashKey = hashKey }
}

/// Every identity service over one set of stores: what the server builds once at start-up.
public struct Identity: Sendable {
    public let orgs: OrgService
    public let devices: DeviceIdentityService
    public let apiKeys: APIKeyService
    /// For per-principal request limits (`configuration.rateLimits.requestsPerPrincipal`).
    public let rateLimiter: RateLimiter
    public let configuration: IdentityConfiguration

    public init(stores: Stores, configuration: IdentityConfiguration, logger: Logger) {
        self.orgs = OrgService(stores: stores, logger: logger)
        self.devices = DeviceIdentityService(stores: stores, configuration: configuration, logger: logger)
        self.apiKeys = APIKeyService(stores: stores, configuration: configuration, logger: logger)
        self.rateLimiter = RateLimiter(counters: stores.counters)
        self.configuration = configuration
    }
}

extension Date {
    /// Now, truncated to the millisecond the stores keep, so that what a service returns
    /// equals what a later read returns.
    static func storeNow() -> Date {
        Date(timeIntervalSince1970: Double(StoreMillis.now()) / 1000)
    }

    /// `self + duration`, to the millisecond.
    func adding(_ duration: Duration) -> Date {
        Date(timeIntervalSince1970: (timeIntervalSince1970 * 1000 + Double(duration.storeMillis)).rounded(.down) / 1000)
    }
}
