/// The plaintext of a device activation code: what an operator reads off the portal and types
/// into the agent's installer, e.g. `7KQ2-M9XD-3HRT`. (The stored record is HubStore's
/// `ActivationCode`, which only holds its keyed hash.)
///
/// Alphabet: Crockford's base32 (`0-9`, `A-Z` without `I L O U`), so that reading is forgiving:
/// case does not matter, dashes and spaces are ignored, `O` reads as `0`, `I` and `L` as `1`.
///
/// Length: 12 symbols, 60 bits. Why that is enough: a guess only helps while a code is live
/// (24 h), and every wrong guess is a counted failure. At the default limit of 100 failed
/// credential attempts per minute per IP, one address makes 144,000 guesses in a code's
/// lifetime; against even 100,000 live codes at once each guess hits with probability
/// 10^5 / 2^60 ≈ 8.7e-14, so the day's chance of any hit is ≈ 1.2e-8. An attacker with 10,000
/// addresses (each at the limit all day) still has ≈ 1.2e-4 for the whole botnet-day, and the
/// audit trail shows 1.4 billion `device.register_failed` entries meanwhile. 10 symbols (50
/// bits) would give ≈ 0.13 for that botnet: too close; 16 (80 bits) would be harder to type for
/// no practical gain.
public struct ActivationCodeText: Sendable, Equatable, CustomStringConvertible {
    /// Symbols of a code.
    public static let length = 12
    /// Longest input `init(parsing:)` looks at (generous for spaces and dashes); longer is invalid.
    public static let maxInputLength = 64

    /// Crockford's base32 symbols, in value order.
    static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// The canonical form: 12 upper-case alphabet symbols, no separators. What is hashed.
    public let normalized: String

    /// A fresh random code. Each symbol takes 5 bits of a random byte; 256 is a multiple of
    /// 32, so every symbol is exactly uniform.
    public static func random() -> ActivationCodeText {
        let symbols = SecureRandom.bytes(length).map { alphabet[Int($0 & 31)] }
        return ActivationCodeText(normalized: String(decoding: symbols, as: UTF8.self))
    }

    private init(normalized: String) { self.normalized = normalized }

    /// Reads a typed code: case-insensitive, dashes and spaces (any number, anywhere) ignored,
    /// `O` → `0`, `I`/`L` → `1`. Nil when the input is longer than `maxInputLength`, holds
    /// any other character (`U` included), or does not come to exactly 12 symbols.
    public init?(parsing input: String) {
        let bytes = input.utf8
        guard bytes.count <= Self.maxInputLength else { return nil }
        var symbols = [UInt8]()
        symbols.reserveCapacity(Self.length)
        for var c in bytes {
            if c == UInt8(ascii: "-") || c == UInt8(ascii: " ") { continue }
            if c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") { c -= 32 }
            switch c {
            case UInt8(ascii: "O"): c = UInt8(ascii: "0")
            case UInt8(ascii: "I"), UInt8(ascii: "L"): c = UInt8(ascii: "1")
            default: break
            }
            guard Self.alphabet.contains(c), symbols.count < Self.length else { return nil }
            symbols.append(c)
        }
        guard symbols.count == Self.length else { return nil }
        self.normalized = String(decoding: symbols, as: UTF8.self)
    }

    /// Groups of four joined by dashes, for display: `7KQ2-M9XD-3HRT`.
    public var display: String {
        let chars = Array(normalized)
        return stride(from: 0, to: chars.count, by: 4).map { String(chars[$0..<min($0 + 4, chars.count)]) }.joined(separator: "-")
    }

    /// What the store keeps: HMAC-SHA256 under `key` of the normalized code, so that every
    /// spelling of one code has one hash and the table cannot be reversed without the key.
    public func keyedHash(_ key: HashKey) -> [UInt8] { key.mac(Array(normalized.utf8)) }

    /// Only the display form's first group: enough to tell codes apart in a log, too little to use.
    public var description: String { "ActivationCode(\(normalized.prefix(4))-…)" }
}
