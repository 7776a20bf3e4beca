#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Input checks of the `RecordStore`, shared by both backends and run before any backend call,
/// so that SQLite and PostgreSQL refuse exactly the same inputs with the same error (and nothing
/// is half-written). Each check returns the record as it will be stored: timestamps truncated
/// to whole milliseconds, an IP address in its canonical text form.
///
/// The rules are the schema's (`protocol/sql/0001_initial.sql`), stated once here: lengths count
/// Unicode scalars (what `length()` counts on both databases); text never holds NUL (PostgreSQL
/// cannot store it); JSON must parse (and be an object where the schema says so) and may not hold
/// a NUL in a string (`\u0000`, which jsonb refuses). Text the schema leaves unbounded is bounded
/// by `StoreLimits.maxValueBytes`, hashes by `RecordValidation.maxHashBytes`.
enum RecordValidation {
    /// Hashes (`secretHash`, `codeHash`) are a few dozen bytes; anything longer (or empty, which
    /// SQLite would bind as NULL) is a caller bug.
    static let maxHashBytes = 512
    /// Earliest and latest storable instants: 0001-01-01 and 9999-12-31T23:59:59.999Z (the
    /// SQLite text format has four year digits; PostgreSQL would take more).
    static let minMillis: Int64 = -62_135_596_800_000
    static let maxMillis: Int64 = 253_402_300_799_999

    // MARK: records

    static func org(_ org: Org) throws(StoreError) -> Org {
        var o = org
        try text(o.name, "org name", chars: 1...200)
        try slug(o.slug)
        try autoApprovedKinds(o.autoApprovedKinds)
        o.createdAt = try date(o.createdAt, "createdAt")
        o.updatedAt = try date(o.updatedAt, "updatedAt")
        return o
    }

    static func device(_ device: Device) throws(StoreError) -> Device {
        var d = device
        try text(d.name, "device name", chars: 1...200)
        if let h = d.secretHash { try hash(h, "secretHash") }
        if d.state == .active && d.secretHash == nil { throw .invalidArgument("an active device needs a secretHash") }
        d.lastSeenAt = try date(d.lastSeenAt, "lastSeenAt")
        if let v = d.agentVersion { try text(v, "agentVersion") }
        try json(d.metadata, "metadata", object: true)
        d.createdAt = try date(d.createdAt, "createdAt")
        d.updatedAt = try date(d.updatedAt, "updatedAt")
        return d
    }

    static func deviceChange(_ change: DeviceChange) throws(StoreError) -> DeviceChange {
        var c = change
        if let n = c.name { try text(n, "device name", chars: 1...200) }
        if let h = c.secretHash { try hash(h, "secretHash") }
        c.lastSeenAt = try date(c.lastSeenAt, "lastSeenAt")
        if let v = c.agentVersion { try text(v, "agentVersion") }
        if let m = c.metadata { try json(m, "metadata", object: true) }
        c.updatedAt = try date(c.updatedAt, "updatedAt")
        return c
    }

    static func activationCode(_ code: ActivationCode) throws(StoreError) -> ActivationCode {
        var a = code
        try hash(a.codeHash, "codeHash")
        try int32(a.attempts, "attempts", min: 0)
        try int32(a.maxAttempts, "maxAttempts", min: 1)
        a.expiresAt = try date(a.expiresAt, "expiresAt")
        a.usedAt = try date(a.usedAt, "usedAt")
        a.createdAt = try date(a.createdAt, "createdAt")
        if a.expiresAt <= a.createdAt { throw .invalidArgument("expiresAt must be after createdAt") }
        return a
    }

    static func apiKey(_ key: APIKeyRecord) throws(StoreError) -> APIKeyRecord {
        var k = key
        try text(k.name, "API key name", chars: 1...200)
        try text(k.prefix, "API key prefix", chars: apiKeyPrefixChars)
        try hash(k.keyHash, "keyHash")
        if k.scopes.count > maxScopes { throw .invalidArgument("\(k.scopes.count) scopes, over \(maxScopes)") }
        for s in k.scopes where !isScope(s) { throw .invalidArgument("scope must match ^[a-z][a-z0-9:_-]{0,63}$") }
        k.expiresAt = try date(k.expiresAt, "expiresAt")
        k.revokedAt = try date(k.revokedAt, "revokedAt")
        k.lastUsedAt = try date(k.lastUsedAt, "lastUsedAt")
        k.createdAt = try date(k.createdAt, "createdAt")
        return k
    }

    static func session(_ session: DiagnosticSession) throws(StoreError) -> DiagnosticSession {
        var s = session
        try text(s.reason, "reason", chars: 1...2000)
        if let n = s.decisionNote { try text(n, "decisionNote") }
        if (s.state == .active || s.state == .rejected) && s.decidedBy == nil { throw .invalidArgument("an \(s.state.rawValue) session needs decidedBy") }
        s.decidedAt = try date(s.decidedAt, "decidedAt")
        s.expiresAt = try date(s.expiresAt, "expiresAt")
        s.closedAt = try date(s.closedAt, "closedAt")
        s.createdAt = try date(s.createdAt, "createdAt")
        s.updatedAt = try date(s.updatedAt, "updatedAt")
        return s
    }

    static func sessionChange(_ change: SessionChange) throws(StoreError) -> SessionChange {
        var c = change
        if let n = c.decisionNote { try text(n, "decisionNote") }
        c.decidedAt = try date(c.decidedAt, "decidedAt")
        c.expiresAt = try date(c.expiresAt, "expiresAt")
        c.closedAt = try date(c.closedAt, "closedAt")
        c.updatedAt = try date(c.updatedAt, "updatedAt")
        return c
    }

    static func command(_ command: CommandRecord) throws(StoreError) -> CommandRecord {
        var c = command
        try text(c.kind, "kind", chars: 1...100)
        try json(c.arguments, "arguments", object: false)
        try text(c.proposedBy, "proposedBy")
        try int32(c.ttlSeconds, "ttlSeconds", min: 1)
        guard (1...100).contains(c.maxAttempts) else { throw .invalidArgument("maxAttempts \(c.maxAttempts) outside 1...100") }
        guard (1...43_200).contains(c.visibilityTimeoutSeconds) else { throw .invalidArgument("visibilityTimeoutSeconds \(c.visibilityTimeoutSeconds) outside 1...43200") }
        guard (0...c.maxAttempts).contains(c.attempts) else { throw .invalidArgument("attempts \(c.attempts) outside 0...maxAttempts") }
        if c.state == .claimed && (c.leaseToken == nil || c.leaseExpiresAt == nil) { throw .invalidArgument("a claimed command needs a lease") }
        if let e = c.exitCode { try int32(e, "exitCode") }
        if let o = c.outputSummary { try text(o, "outputSummary", chars: 0...65_536) }
        if let r = c.result { try json(r, "result", object: false) }
        if let k = c.idempotencyKey { try text(k, "idempotencyKey", chars: idempotencyKeyChars) }
        c.decidedAt = try date(c.decidedAt, "decidedAt")
        c.expiresAt = try date(c.expiresAt, "expiresAt")
        c.leaseExpiresAt = try date(c.leaseExpiresAt, "leaseExpiresAt")
        c.leasedAt = try date(c.leasedAt, "leasedAt")
        c.finishedAt = try date(c.finishedAt, "finishedAt")
        c.createdAt = try date(c.createdAt, "createdAt")
        c.updatedAt = try date(c.updatedAt, "updatedAt")
        return c
    }

    static func commandChange(_ change: CommandChange) throws(StoreError) -> CommandChange {
        var c = change
        c.decidedAt = try date(c.decidedAt, "decidedAt")
        if let a = c.attempts { try int32(a, "attempts", min: 0) }
        if case .set(let token, let expiresAt, let leasedAt) = c.lease {
            c.lease = .set(token: token, expiresAt: try date(expiresAt, "lease expiresAt"), leasedAt: try date(leasedAt, "leasedAt"))
        }
        if let e = c.exitCode { try int32(e, "exitCode") }
        if let o = c.outputSummary { try text(o, "outputSummary", chars: 0...65_536) }
        if let r = c.result { try json(r, "result", object: false) }
        c.finishedAt = try date(c.finishedAt, "finishedAt")
        c.updatedAt = try date(c.updatedAt, "updatedAt")
        return c
    }

    /// `commandID`, when given, is the command the event must belong to.
    static func commandEvent(_ event: CommandEvent, commandID: UUID? = nil) throws(StoreError) -> CommandEvent {
        var e = event
        if let commandID, commandID != e.commandID { throw .invalidArgument("event of command \(e.commandID) given for command \(commandID)") }
        try text(e.event, "event", chars: 1...64)
        if let a = e.actor { try text(a, "actor") }
        try json(e.detail, "detail", object: false)
        e.at = try date(e.at, "at")
        return e
    }

    static func logLines(_ lines: [ExecutionLogLine]) throws(StoreError) -> [ExecutionLogLine] {
        if lines.count > StoreLimits.maxBatch { throw .invalidArgument("\(lines.count) log lines in one call, over \(StoreLimits.maxBatch)") }
        var out = lines
        var total = 0
        for i in out.indices {
            if out[i].seq < 0 { throw .invalidArgument("log line seq \(out[i].seq) is negative") }
            try text(out[i].line, "log line")
            total += out[i].line.utf8.count
            out[i].at = try date(out[i].at, "at")
        }
        if total > StoreLimits.maxValueBytes { throw .invalidArgument("log lines of \(total) bytes in one call, over \(StoreLimits.maxValueBytes)") }
        return out
    }

    static func audit(_ entry: AuditEntry) throws(StoreError) -> AuditEntry {
        var a = entry
        a.at = try date(a.at, "at")
        if let s = a.actorID { try text(s, "actorID") }
        try text(a.action, "action", chars: 1...100)
        if let s = a.targetType { try text(s, "targetType") }
        if let s = a.targetID { try text(s, "targetID") }
        if let s = a.requestID { try text(s, "requestID") }
        if let ip = a.ip { a.ip = try address(ip) }
        try json(a.detail, "detail", object: false)
        return a
    }


    /// An org's `autoApprovedKinds`: at most `StoreLimits.maxBatch` kinds of 1...100 characters.
    static func autoApprovedKinds(_ kinds: [String]) throws(StoreError) {
        if kinds.count > StoreLimits.maxBatch { throw .invalidArgument("autoApprovedKinds has \(kinds.count) entries, over \(StoreLimits.maxBatch)") }
        for kind in kinds { try text(kind, "autoApprovedKinds entry", chars: 1...100) }
    }

    /// True for a string some command's `idempotencyKey` can be: a key a client presents that
    /// no command can have is simply not there (not the caller's bug).
    static func isIdempotencyKey(_ s: String) -> Bool {
        idempotencyKeyChars.contains(s.unicodeScalars.count) && !s.utf8.contains(0)
    }

    /// True for a string `org(slug:)` can find at all (anything else is simply not there).
    static func isSlug(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (1...63).contains(u.count) else { return false }
        func ok(_ c: UInt8, first: Bool) -> Bool {
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (!first && c == UInt8(ascii: "-"))
        }
        return u.enumerated().allSatisfy { ok($0.element, first: $0.offset == 0) }
    }

    /// True for a string `apiKey(prefix:)` can find at all: a presented key's prefix comes from
    /// a client, and anything no stored prefix can be is simply not there (not the caller's bug).
    static func isAPIKeyPrefix(_ s: String) -> Bool {
        apiKeyPrefixChars.contains(s.unicodeScalars.count) && !s.utf8.contains(0)
    }

    /// The ids of one `orgs(ids:)` call, each once, within `StoreLimits.maxBatch`.
    static func ids(_ ids: [UUID]) throws(StoreError) -> [UUID] {
        let unique = Array(Set(ids))
        if unique.count > StoreLimits.maxBatch { throw .invalidArgument("\(unique.count) ids in one call, over \(StoreLimits.maxBatch)") }
        return unique
    }

    // MARK: fields

    /// The schema's `length(idempotency_key) BETWEEN 1 AND 128`.
    static let idempotencyKeyChars = 1...128
    /// The schema's `length(prefix) BETWEEN 6 AND 32`.
    static let apiKeyPrefixChars = 6...32
    /// Scopes are a short closed vocabulary (`admin`, `devices:read` ...); a long list is a bug.
    static let maxScopes = 32

    /// `^[a-z][a-z0-9:_-]{0,63}$`: scopes are compared as exact tokens, so only plain ASCII.
    static func isScope(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (1...64).contains(u.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(u[0]) else { return false }
        return u.dropFirst().allSatisfy { c in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
                || c == UInt8(ascii: ":") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }

    /// NUL-free text of at most `maxBytes` UTF-8 bytes and, when given, `chars` Unicode scalars.
    static func text(_ s: String, _ field: String, chars: ClosedRange<Int>? = nil, maxBytes: Int = StoreLimits.maxValueBytes) throws(StoreError) {
        let bytes = s.utf8.count
        if bytes > maxBytes { throw .invalidArgument("\(field) of \(bytes) bytes, over \(maxBytes)") }
        if s.utf8.contains(0) { throw .invalidArgument("\(field) contains a NUL character") }
        if let chars {
            let n = s.unicodeScalars.count
            if !chars.contains(n) { throw .invalidArgument("\(field) of \(n) characters, outside \(chars.lowerBound)...\(chars.upperBound)") }
        }
    }

    static func slug(_ s: String) throws(StoreError) {
        if !isSlug(s) { throw .invalidArgument("slug must match ^[a-z0-9][a-z0-9-]{0,62}$") }
    }

    static func hash(_ h: [UInt8], _ field: String) throws(StoreError) {
        if h.isEmpty || h.count > maxHashBytes { throw .invalidArgument("\(field) of \(h.count) bytes, outside 1...\(maxHashBytes)") }
    }

    /// An `integer` column (PostgreSQL int4 on both backends' behalf).
    static func int32(_ v: Int, _ field: String, min: Int = Int(Int32.min)) throws(StoreError) {
        if v < min || v > Int(Int32.max) { throw .invalidArgument("\(field) \(v) outside \(min)...\(Int32.max)") }
    }

    /// Valid JSON (an object when `object`), bounded, without NUL in any string or key.
    static func json(_ s: String, _ field: String, object: Bool) throws(StoreError) {
        try text(s, field)
        guard let value = try? JSONSerialization.jsonObject(with: Data(s.utf8), options: [.fragmentsAllowed]) else {
            throw .invalidArgument("\(field) is not valid JSON")
        }
        if object && !(value is [String: Any]) { throw .invalidArgument("\(field) must be a JSON object") }
        if containsNUL(value) { throw .invalidArgument("\(field) holds a NUL character (\\u0000)") }
        if hasLoneSurrogateEscape(s) { throw .invalidArgument("\(field) holds an unpaired UTF-16 surrogate escape") }
    }

    /// A timestamp truncated to whole milliseconds, within the storable range.
    static func date(_ d: Date, _ field: String) throws(StoreError) -> Date {
        let t = d.timeIntervalSince1970
        guard t.isFinite, let ms = RecordTime.millisChecked(d), (minMillis...maxMillis).contains(ms) else {
            throw .invalidArgument("\(field) \(t) outside years 1...9999")
        }
        return RecordTime.date(millis: ms)
    }

    static func date(_ d: Date?, _ field: String) throws(StoreError) -> Date? {
        guard let d else { return nil }
        let checked: Date = try date(d, field)
        return checked
    }

    /// An IPv4 or IPv6 address (no mask, no zone) in canonical text form (`inet_ntop`), which
    /// PostgreSQL's `inet` reads back unchanged.
    static func address(_ s: String) throws(StoreError) -> String {
        guard s.utf8.count <= 64, !s.utf8.contains(0) else { throw .invalidArgument("ip is not an IP address") }
        var v4 = in_addr()
        var v6 = in6_addr()
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        if inet_pton(AF_INET, s, &v4) == 1, inet_ntop(AF_INET, &v4, &buffer, socklen_t(buffer.count)) != nil {
            return String(cString: buffer)
        }
        if inet_pton(AF_INET6, s, &v6) == 1, inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil {
            return String(cString: buffer)
        }
        throw .invalidArgument("ip is not an IPv4 or IPv6 address")
    }

    private static func containsNUL(_ value: Any) -> Bool {
        if let s = value as? String { return s.utf8.contains(0) }
        if let a = value as? [Any] { return a.contains { containsNUL($0) } }
        if let d = value as? [String: Any] { return d.contains { $0.key.utf8.contains(0) || containsNUL($0.value) } }
        return false
    }

    /// `\uD800`–`\uDFFF` escapes not forming a high-low pair: jsonb refuses them, SQLite's
    /// `json_valid` does not, so they are refused here for both.
    private static func hasLoneSurrogateEscape(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count >= 6 else { return false }
        func hex(_ i: Int) -> Int? {
            guard i + 4 <= u.count else { return nil }
            var v = 0
            for k in i..<(i + 4) {
                let c = u[k]
                let d: Int
                switch c {
                case 48...57: d = Int(c) - 48
                case 65...70: d = Int(c) - 55
                case 97...102: d = Int(c) - 87
                default: return nil
                }
                v = v * 16 + d
            }
            return v
        }
        var i = 0
        var pendingHigh = false
        while i < u.count {
            if u[i] == UInt8(ascii: "\\"), i + 1 < u.count {
                if u[i + 1] == UInt8(ascii: "u"), let v = hex(i + 2) {
                    if (0xDC00...0xDFFF).contains(v) {
                        if !pendingHigh { return true }
                        pendingHigh = false
                    } else {
                        if pendingHigh { return true }
                        pendingHigh = (0xD800...0xDBFF).contains(v)
                    }
                    i += 6
                    continue
                }
                if pendingHigh { return true }
                i += 2
                continue
            }
            if pendingHigh { return true }
            i += 1
        }
        return pendingHigh
    }
}

/// Millisecond time, the precision both backends keep (see `Records.swift`).
enum RecordTime {
    /// Whole milliseconds since 1970, rounded down; a value within 1 µs below a millisecond
    /// counts as that millisecond, so that truncating a truncated date never moves it (a `Date`
    /// is a binary fraction and cannot hold most decimal milliseconds exactly).
    static func millisChecked(_ d: Date) -> Int64? {
        let x = (d.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)
        guard x.isFinite, abs(x) < 9e15 else { return nil }
        return Int64(x)
    }

    /// The one `Date` both backends return for a millisecond.
    static func date(millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

    /// A date read from a backend, normalized to its millisecond.
    static func normalized(_ d: Date) -> Date {
        guard let ms = millisChecked(d) else { return d }
        return date(millis: ms)
    }
}
