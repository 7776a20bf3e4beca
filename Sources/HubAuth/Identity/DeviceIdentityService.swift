import Foundation
import HubHTTP
import HubStore
import Logging

/// A provisioned device and the activation code to give its installer (shown once).
public struct ProvisionedDevice: Sendable, Equatable {
    public var device: Device
    /// Display form, `XXXX-XXXX-XXXX`.
    public var activationCode: String
    public var expiresAt: Date
}

/// What a device gets for redeeming its activation code (the secret is shown once).
public struct RegisteredDevice: Sendable, Equatable {
    public var deviceID: UUID
    public var orgID: UUID
    public var deviceSecret: String
}

/// A device's new secret after rotation (shown once); its tokens are revoked.
public struct RotatedDeviceSecret: Sendable, Equatable {
    public var device: Device
    public var deviceSecret: String
}

/// Device identity: provisioning with activation codes, registration, secret authentication,
/// opaque session tokens with revocation, and the disable / enable / rotate lifecycle.
///
/// Errors: `Problem` for the caller's side (400 invalid input, 401 bad credential — always the
/// same body per credential kind —, 404, 409 wrong state, 429 rate limited); `StoreError`
/// passes through for store failures, which the server edge answers with 503.
///
/// Disable and rotate revoke every token of the device; they return the `Device` so that the
/// caller can tell the nodes to close its sockets (pub/sub is not this service's job).
public struct DeviceIdentityService: Sendable {
    let records: any RecordStore
    let keyValue: any KeyValueStore
    let configuration: IdentityConfiguration
    let audit: AuditLog
    let failures: CredentialFailureLimiter
    let logger: Logger

    public init(stores: Stores, configuration: IdentityConfiguration, logger: Logger) {
        self.records = stores.records
        self.keyValue = stores.keyValue
        self.configuration = configuration
        self.audit = AuditLog(records: stores.records, logger: logger)
        self.failures = CredentialFailureLimiter(limiter: RateLimiter(counters: stores.counters), logger: logger)
        self.logger = logger
    }

    // MARK: provisioning

    /// Creates a `provisioned` device in the org with a fresh activation code (valid for
    /// `activationCodeLifetime`). 404 when the org does not exist. Audited (`device.provision`).
    public func provision(orgID: UUID, name: String, by caller: Caller) async throws -> ProvisionedDevice {
        let name = try InputRules.name(name)
        guard try await records.org(id: orgID) != nil else { throw Problem.notFound("no such org") }
        let device = Device(orgID: orgID, name: name, state: .provisioned, createdAt: .storeNow())
        try await records.insertDevice(device)
        let (code, expiresAt) = try await issueCode(for: device, by: caller)
        try await audit.record(.deviceProvision, by: caller, orgID: orgID, target: .device(device.id), detail: ["name": name])
        return ProvisionedDevice(device: device, activationCode: code.display, expiresAt: expiresAt)
    }

    /// A new activation code for a device that is still `provisioned` (its earlier code
    /// expired or was lost); the earlier code stops working. 409 in any other state.
    /// Audited (`device.provision`, detail `reissue`).
    public func reissueActivationCode(deviceID: UUID, orgID: UUID? = nil, by caller: Caller) async throws -> ProvisionedDevice {
        let device = try await device(id: deviceID, orgID: orgID)
        guard device.state == .provisioned else { throw Problem.conflict("device is \(device.state.rawValue); only a provisioned device gets a new activation code") }
        let (code, expiresAt) = try await issueCode(for: device, by: caller)
        try await audit.record(.deviceProvision, by: caller, orgID: device.orgID, target: .device(device.id), detail: ["reissue": "true"])
        return ProvisionedDevice(device: device, activationCode: code.display, expiresAt: expiresAt)
    }

    /// Stores a new code (the store retires the device's earlier live code). Codes are unique
    /// by hash; a collision (2^-60 per pair) is answered by drawing again.
    private func issueCode(for device: Device, by caller: Caller) async throws(StoreError) -> (ActivationCodeText, Date) {
        let now = Date.storeNow()
        let expiresAt = now.adding(configuration.activationCodeLifetime)
        var attempt = 0
        while true {
            let code = ActivationCodeText.random()
            let record = HubStore.ActivationCode(orgID: device.orgID, deviceID: device.id, codeHash: code.keyedHash(configuration.hashKey),
                                                 expiresAt: expiresAt, maxAttempts: configuration.rateLimits.failedAttemptsPerActivationCode.limit,
                                                 createdBy: caller.userID, createdAt: now)
            do {
                try await records.insertActivationCode(record)
                return (code, expiresAt)
            } catch .conflict(let message) {
                attempt += 1
                if attempt >= 3 { throw .conflict(message) }
            }
        }
    }

    // MARK: registration

    /// Redeems an activation code: the device goes `provisioned` → `active` with a fresh
    /// secret (returned once), optionally renamed and with its agent version. The code is
    /// single-use (the store redeems atomically: of concurrent registrations one wins).
    ///
    /// Every failure — malformed, unknown, expired, used code, device no longer provisioned —
    /// is the same 401, counted against the client's IP and the code, and audited
    /// (`device.register_failed`, the reason in the entry only). Over a limit: 429.
    public func register(code: String, name: String? = nil, agentVersion: String? = nil, by caller: Caller) async throws -> RegisteredDevice {
        // Input errors first: a 400 says nothing about the code, and must not use it up.
        let name = try name.map { (n: String) throws(Problem) in try InputRules.name(n) }
        let agentVersion = try agentVersion.map { (v: String) throws(Problem) in try InputRules.agentVersion(v) }
        let parsed = ActivationCodeText(parsing: code)
        let hash = parsed?.keyedHash(configuration.hashKey)
        var subjects = [FailureSubject.ip(caller.ip ?? "unknown", configuration.rateLimits.failedAttemptsPerIP)]
        if let hash { subjects.append(.activationCode(hash: hash, configuration.rateLimits.failedAttemptsPerActivationCode)) }
        try await failures.ensureAllowed(subjects)

        guard let hash else { throw await registrationFailed("malformed_code", orgID: nil, deviceID: nil, subjects, caller) }
        let redeemed: HubStore.ActivationCode
        switch try await records.redeemActivationCode(codeHash: hash, now: Date()) {
        case .redeemed(let record): redeemed = record
        case .notFound: throw await registrationFailed("unknown_code", orgID: nil, deviceID: nil, subjects, caller)
        case .expired(let record): throw await registrationFailed("expired_code", orgID: record.orgID, deviceID: record.deviceID, subjects, caller)
        case .alreadyUsed(let record): throw await registrationFailed("used_code", orgID: record.orgID, deviceID: record.deviceID, subjects, caller)
        }

        let secret = DeviceSecret.random()
        let change = DeviceChange(name: name, state: .active, secretHash: secret.storedHash, agentVersion: agentVersion, updatedAt: .storeNow())
        guard case .updated(let device) = try await records.updateDevice(id: redeemed.deviceID, expected: [.provisioned], change: change) else {
            // Disabled (or gone) between provisioning and registration: the code is spent.
            throw await registrationFailed("device_not_provisioned", orgID: redeemed.orgID, deviceID: redeemed.deviceID, subjects, caller)
        }
        await audit.recordBestEffort(.deviceRegister, by: .device(device.id, ip: caller.ip, requestID: caller.requestID),
                                     orgID: device.orgID, target: .device(device.id), outcome: .success,
                                     detail: agentVersion.map { ["agent_version": $0] } ?? [:])
        return RegisteredDevice(deviceID: device.id, orgID: device.orgID, deviceSecret: secret.text)
    }

    /// Counts and audits a failed registration and returns the one 401 every cause gets.
    private func registrationFailed(_ reason: String, orgID: UUID?, deviceID: UUID?, _ subjects: [FailureSubject], _ caller: Caller) async -> Problem {
        await failures.recordFailure(subjects)
        await audit.recordBestEffort(.deviceRegisterFailed, by: caller, orgID: orgID, target: deviceID.map(AuditTarget.device),
                                     outcome: .denied, detail: ["reason": reason])
        return Problem.unauthenticated("invalid activation code")
    }

    // MARK: lifecycle

    /// The device; 404 when it does not exist or (with `orgID`) belongs to another org — the
    /// same answer, so that ids of other orgs cannot be probed.
    public func device(id: UUID, orgID: UUID? = nil) async throws -> Device {
        guard let device = try await records.device(id: id), orgID == nil || device.orgID == orgID else {
            throw Problem.notFound("no such device")
        }
        return device
    }

    /// `active`/`provisioned` → `disabled`, and every token of the device revoked. Already
    /// disabled: 409 — after revoking again, so that retrying a disable whose revocation
    /// failed (a 503 after the state change) still revokes. Audited (`device.disable`).
    public func disable(deviceID: UUID, orgID: UUID? = nil, by caller: Caller) async throws -> Device {
        _ = try await device(id: deviceID, orgID: orgID)
        // State first, then the generation: an authentication that read the device before the
        // state change mints its token with the old generation, which the bump then revokes.
        switch try await records.updateDevice(id: deviceID, expected: [.active, .provisioned], change: DeviceChange(state: .disabled, updatedAt: .storeNow())) {
        case .updated(let device):
            try await revokeAllTokens(deviceID: deviceID)
            try await audit.record(.deviceDisable, by: caller, orgID: device.orgID, target: .device(deviceID))
            return device
        case .conflict(let current):
            try await revokeAllTokens(deviceID: deviceID)
            throw Problem.conflict("device is \(current.state.rawValue)")
        case .notFound:
            throw Problem.notFound("no such device")
        }
    }

    /// `disabled` → `active` (or `provisioned` when it never registered). 409 when not
    /// disabled. Tokens revoked by the disable stay revoked. Audited (`device.enable`).
    public func enable(deviceID: UUID, orgID: UUID? = nil, by caller: Caller) async throws -> Device {
        let current = try await device(id: deviceID, orgID: orgID)
        guard current.state == .disabled else { throw Problem.conflict("device is \(current.state.rawValue)") }
        let target: DeviceState = current.secretHash == nil ? .provisioned : .active
        switch try await records.updateDevice(id: deviceID, expected: [.disabled], change: DeviceChange(state: target, updatedAt: .storeNow())) {
        case .updated(let device):
            try await audit.record(.deviceEnable, by: caller, orgID: device.orgID, target: .device(deviceID))
            return device
        case .conflict(let now):
            throw Problem.conflict("device is \(now.state.rawValue)")
        case .notFound:
            throw Problem.notFound("no such device")
        }
    }

    /// A new secret for an `active` or `disabled` device (returned once): the old secret stops
    /// working and every token is revoked. 409 for a `provisioned` device (it has no secret
    /// yet: reissue its activation code instead). Audited (`device.rotate_secret`).
    public func rotateSecret(deviceID: UUID, orgID: UUID? = nil, by caller: Caller) async throws -> RotatedDeviceSecret {
        _ = try await device(id: deviceID, orgID: orgID)
        let secret = DeviceSecret.random()
        let change = DeviceChange(secretHash: secret.storedHash, updatedAt: .storeNow())
        switch try await records.updateDevice(id: deviceID, expected: [.active, .disabled], change: change) {
        case .updated(let device):
            try await revokeAllTokens(deviceID: deviceID)
            try await audit.record(.deviceRotateSecret, by: caller, orgID: device.orgID, target: .device(deviceID))
            return RotatedDeviceSecret(device: device, deviceSecret: secret.text)
        case .conflict(let current):
            throw Problem.conflict("device is \(current.state.rawValue); it has no secret to rotate")
        case .notFound:
            throw Problem.notFound("no such device")
        }
    }
}
