import Foundation
import HubHTTP
import HubStore

/// A device session token as issued (shown once); `expiresIn` is its sliding TTL in seconds.
public struct DeviceTokenGrant: Sendable, Equatable {
    public var token: String
    public var expiresIn: Int
    public var deviceID: UUID
    public var orgID: UUID
}

/// Who a valid device token speaks for.
public struct DevicePrincipal: Sendable, Equatable, Hashable {
    public var deviceID: UUID
    public var orgID: UUID

    public init(deviceID: UUID, orgID: UUID) {
        self.deviceID = deviceID
        self.orgID = orgID
    }
}

/// The value of a `devtok:<hex sha256(token)>` entry.
struct DeviceTokenEntry: Equatable {
    var deviceID: UUID
    var orgID: UUID
    var gen: UInt64

    /// The stored form, read on every authenticated device request: 41 bytes, version 1, the
    /// device id and org id as raw bytes, the generation big-endian. (JSON cost more than the
    /// rest of the token check together.)
    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(41)
        out.append(1)
        withUnsafeBytes(of: deviceID.uuid) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: orgID.uuid) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: gen.bigEndian) { out.append(contentsOf: $0) }
        return out
    }

    init(deviceID: UUID, orgID: UUID, gen: UInt64) {
        self.deviceID = deviceID
        self.orgID = orgID
        self.gen = gen
    }

    /// Nil for anything that is not a version-1 entry.
    init?(bytes: [UInt8]) {
        guard bytes.count == 41, bytes[0] == 1 else { return nil }
        func uuid(at offset: Int) -> UUID {
            var raw: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes[offset..<offset + 16]) }
            return UUID(uuid: raw)
        }
        deviceID = uuid(at: 1)
        orgID = uuid(at: 17)
        gen = bytes[33..<41].reduce(0) { $0 << 8 | UInt64($1) }
    }
}

// Tokens and their revocation.
//
// Each token entry carries the device's generation at issue time; `devgen:<id>` holds the
// current one (absent = 0). Validation compares the two, so revoking every token of a device
// is one write, however many tokens it has and on whichever nodes they were issued.
//
// Revocation writes a fresh random non-zero 64-bit value rather than incrementing, because the
// key-value interface has no atomic increment and a read-modify-write race would be harmful
// with counting: revocation R2 reads 5 and stalls, R1 writes 6, a token is issued with 6, R2
// writes 6 — that token outlives R2 although R2 finished after it was issued. With random
// values each revocation's write differs from every generation any earlier token carries
// (collision 2^-64), so whichever write lands last, every token issued before it is dead; a
// lost race between two revocations only decides which of two fresh values stays. Random
// values also never repeat a generation: if the key were lost (evicted, or a Redis restart
// without persistence) counting would restart at 0 and could walk back into the generation of
// old tokens; here a lost key reads as 0, which only tokens issued before the first revocation
// carry. That is also why the key has no TTL: it must outlive any token, and sliding tokens
// have no fixed end. (Its footprint is one small key per revoked device.)
extension DeviceIdentityService {
    static func generationKey(_ deviceID: UUID) -> String { "devgen:" + deviceID.lowercasedString }

    /// Exchanges a device's id and secret for a session token. The device must be `active`
    /// and the secret match its stored hash (constant-time). Every failure — malformed or
    /// unknown id, wrong secret, device not active — is the same 401, counted against the IP
    /// and the device, and audited (`device.auth_failed`); over a limit: 429.
    public func authenticate(deviceID rawID: String, secret: String, by caller: Caller) async throws -> DeviceTokenGrant {
        let deviceID = rawID.utf8.count <= 64 ? UUID(uuidString: rawID) : nil
        var subjects = [FailureSubject.ip(caller.ip ?? "unknown", configuration.rateLimits.failedAttemptsPerIP)]
        if let deviceID { subjects.append(.device(deviceID, configuration.rateLimits.failedAttemptsPerDevice)) }
        try await failures.ensureAllowed(subjects)

        let device = try await deviceID.asyncMap { (id: UUID) throws(StoreError) in try await records.device(id: id) } ?? nil
        // Hash and compare even without a device, so an unknown id costs the same CPU time.
        let matches = DeviceSecret.verify(secret, against: device?.secretHash ?? [UInt8](repeating: 0, count: 32))
        guard let device, matches, device.secretHash != nil, device.state == .active else {
            let reason: String
            switch device {
            case nil: reason = deviceID == nil ? "malformed_id" : "unknown_device"
            case let found? where found.state != .active: reason = "device_" + found.state.rawValue
            default: reason = "bad_secret"
            }
            await failures.recordFailure(subjects)
            await audit.recordBestEffort(.deviceAuthFailed, by: .device(deviceID, ip: caller.ip, requestID: caller.requestID),
                                         orgID: device?.orgID, target: deviceID.map(AuditTarget.device), outcome: .denied,
                                         detail: ["reason": reason])
            throw Problem.unauthenticated("invalid device credentials")
        }

        // The generation is read before the token is stored: a revocation in between leaves
        // the token with a stale generation, which validation refuses.
        let gen = try await currentGeneration(device.id)
        let token = DeviceToken.random()
        let entry = DeviceTokenEntry(deviceID: device.id, orgID: device.orgID, gen: gen)
        try await keyValue.set(token.storeKey, entry.bytes, ttl: configuration.deviceTokenTTL)
        return DeviceTokenGrant(token: token.text, expiresIn: max(1, Int((configuration.deviceTokenTTL.storeMillis + 999) / 1000)),
                                deviceID: device.id, orgID: device.orgID)
    }

    /// The device a token speaks for, extending the token's life to `deviceTokenTTL` from now
    /// (sliding). 401 when the token is malformed, unknown, expired, or revoked (its device's
    /// generation changed: disabled, secret rotated, `revokeAllTokens`).
    public func validateToken(_ presented: String) async throws -> DevicePrincipal {
        guard let token = DeviceToken(presented: presented),
              let value = try await keyValue.get(token.storeKey, refreshingTTL: configuration.deviceTokenTTL) else {
            throw Problem.unauthenticated("invalid or expired device token")
        }
        guard let entry = DeviceTokenEntry(bytes: value) else {
            logger.error("unreadable device token entry", metadata: ["bytes": .stringConvertible(value.count)])
            throw Problem.unauthenticated("invalid or expired device token")
        }
        guard try await currentGeneration(entry.deviceID) == entry.gen else {
            // Revoked: drop the entry now rather than letting each use refresh it.
            _ = try? await keyValue.delete([token.storeKey])
            throw Problem.unauthenticated("invalid or expired device token")
        }
        return DevicePrincipal(deviceID: entry.deviceID, orgID: entry.orgID)
    }

    /// Revokes every token of the device, on every node (see above for why a random value).
    public func revokeAllTokens(deviceID: UUID) async throws(StoreError) {
        var gen = SecureRandom.uint64()
        while gen == 0 { gen = SecureRandom.uint64() }  // 0 means "never revoked"
        try await keyValue.set(Self.generationKey(deviceID), Array(String(gen).utf8), ttl: nil)
    }

    /// The device's token generation; 0 when never revoked. An unreadable value (not written
    /// by this code) counts as a generation no token has, so it fails closed.
    func currentGeneration(_ deviceID: UUID) async throws(StoreError) -> UInt64 {
        guard let bytes = try await keyValue.get(Self.generationKey(deviceID)) else { return 0 }
        return UInt64(String(decoding: bytes, as: UTF8.self)) ?? UInt64.max
    }
}

extension Data {
    var bytes: [UInt8] { [UInt8](self) }
}

extension Optional {
    /// `map` with an async, typed-throwing transform.
    func asyncMap<U, E: Error>(_ transform: (Wrapped) async throws(E) -> U) async throws(E) -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
