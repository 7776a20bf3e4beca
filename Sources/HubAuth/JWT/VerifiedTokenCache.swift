#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Verified tokens of one event loop, so a client that sends the same bearer token on every
/// request pays for the signature check once per token lifetime.
///
/// Not `Sendable` and not locked: each loop owns one and uses it only on its own thread (pass it
/// to `SupabaseJWTVerifier.verify(_:nowSeconds:cache:)`). That is what keeps a hit at ~0.1 µs.
///
/// - Bounded: `capacity` entries in a 4-way set-associative table. Inserting into a full set
///   evicts an entry that can no longer answer (expired, or made with replaced keys), else the
///   one expiring soonest: O(1), no LRU bookkeeping on hits.
/// - Keyed by a seeded hash of the token's last 32 bytes (all signature bytes in any JWS, which
///   an attacker cannot choose for tokens that verify), but a hit requires the stored token to
///   equal the presented one byte for byte: a hash collision can cost a verification, never
///   accept a different token. Only tokens that passed every check are ever inserted.
/// - An entry answers only while `now < exp + leeway` (and `now >= nbf - leeway`), and only for
///   the verifier and key snapshot that verified it (the "epoch"): `replaceKeys` retires every
///   loop's entries at once without touching the caches.
public final class VerifiedTokenCache {
    struct Entry {
        var token: [UInt8]
        var user: VerifiedUser
        /// `exp + leeway` (saturated): answers while `now < validUntil`.
        var validUntil: Int64
        /// `nbf - leeway`: answers while `now >= validFrom`.
        var validFrom: Int64
        var epoch: UInt64
    }

    static let ways = 4

    /// Maximum entries (the requested capacity rounded up to 4 × a power of two).
    public let capacity: Int
    private let setMask: Int
    /// Per-slot hash (0 = empty), scanned before touching the entries.
    private let hashes: UnsafeMutablePointer<UInt64>
    private let entries: UnsafeMutablePointer<Entry?>
    private let seed: UInt64

    /// Entries currently held (some may have expired and not yet been evicted).
    public private(set) var count = 0
    /// Lookups answered from the cache.
    public private(set) var hits = 0
    /// Lookups that found nothing usable (the caller then verified the token in full).
    public private(set) var misses = 0
    /// Live entries pushed out by inserts into a full set.
    public private(set) var evictions = 0

    /// - Parameter capacity: maximum entries; default 16,384 (at ~1 KiB per token, ≤ ~20 MiB
    ///   per loop when full).
    public init(capacity: Int = 16384) {
        var sets = 1
        while sets * Self.ways < capacity { sets <<= 1 }
        self.capacity = sets * Self.ways
        setMask = sets - 1
        hashes = .allocate(capacity: self.capacity)
        hashes.initialize(repeating: 0, count: self.capacity)
        entries = .allocate(capacity: self.capacity)
        entries.initialize(repeating: nil, count: self.capacity)
        seed = UInt64.random(in: .min ... .max)
    }

    deinit {
        entries.deinitialize(count: capacity)
        entries.deallocate()
        hashes.deallocate()
    }

    /// Drops every entry.
    public func removeAll() {
        for i in 0..<capacity where hashes[i] != 0 {
            hashes[i] = 0
            entries[i] = nil
        }
        count = 0
    }

    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    private func hash(_ token: UnsafeRawBufferPointer) -> UInt64 {
        let n = token.count
        var h = Self.mix(seed ^ UInt64(truncatingIfNeeded: n))
        if n >= 32 {
            let tail = token.baseAddress! + (n - 32)
            for k in 0..<4 { h = Self.mix(h ^ tail.loadUnaligned(fromByteOffset: k * 8, as: UInt64.self)) }
        } else {
            for b in token { h = Self.mix(h ^ UInt64(b)) }
        }
        return h | 1  // 0 marks an empty slot
    }

    @inline(__always)
    private func firstSlot(_ h: UInt64) -> Int { (Int(truncatingIfNeeded: h >> 32) & setMask) &* Self.ways }

    @inline(__always)
    private func holds(_ i: Int, _ token: UnsafeRawBufferPointer) -> Bool {
        entries[i]!.token.withUnsafeBytes { stored in
            stored.count == token.count && memcmp(stored.baseAddress!, token.baseAddress!, token.count) == 0
        }
    }

    /// The user of a cached verification of exactly these bytes, if it still answers now.
    func lookup(_ token: UnsafeRawBufferPointer, epoch: UInt64, now: Int64) -> VerifiedUser? {
        let h = hash(token)
        let first = firstSlot(h)
        for i in first..<(first + Self.ways) where hashes[i] == h && holds(i, token) {
            let entry = entries[i]!
            if entry.epoch != epoch || now >= entry.validUntil {
                // Can never answer again (time only moves forward; keys were replaced).
                hashes[i] = 0
                entries[i] = nil
                count -= 1
                break
            }
            guard now >= entry.validFrom else { break }
            hits += 1
            return entry.user
        }
        misses += 1
        return nil
    }

    /// Records a verification that passed every check.
    func insert(_ token: UnsafeRawBufferPointer, user: VerifiedUser, validUntil: Int64, validFrom: Int64,
                epoch: UInt64, now: Int64) {
        guard !token.isEmpty else { return }
        let h = hash(token)
        let first = firstSlot(h)
        var victim = -1
        var soonest = Int64.max
        for i in first..<(first + Self.ways) {
            if hashes[i] == 0 || (hashes[i] == h && holds(i, token)) {
                victim = i
                break
            }
            let e = entries[i]!
            if e.epoch != epoch || now >= e.validUntil {
                victim = i  // dead entry: reuse it, keep looking for an empty slot or a duplicate
                soonest = .min
            } else if e.validUntil < soonest {
                victim = i
                soonest = e.validUntil
            }
        }
        if hashes[victim] == 0 {
            count += 1
        } else if soonest != .min && !(hashes[victim] == h && holds(victim, token)) {
            evictions += 1
        }
        hashes[victim] = h
        entries[victim] = Entry(token: Array(token), user: user, validUntil: validUntil, validFrom: validFrom, epoch: epoch)
    }
}

/// One cache per event loop, used only on that loop's thread: sharing one across threads would
/// race on its table. Spelled out so the compiler rejects sending it to another isolation domain.
@available(*, unavailable)
extension VerifiedTokenCache: Sendable {}
