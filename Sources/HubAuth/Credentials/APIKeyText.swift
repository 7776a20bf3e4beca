/// An API key as its holder sees it: `dhk_<prefix>_<secret>`, e.g.
/// `dhk_5f3k9q2m7x1c_hQ4…` (60 characters).
///
/// - `dhk_` tells an `Authorization: Bearer` value apart from a JWT at a glance.
/// - `prefix`: 12 lower-case Crockford base32 symbols (60 random bits), stored in the clear
///   and unique: it finds the record and names the key in listings and logs.
/// - `secret`: 43 base64url characters (256 random bits), stored only as SHA-256 of its UTF-8
///   text and compared in constant time. 256 bits make a plain hash safe (see `DeviceSecret`).
///
/// The secret may itself contain `_` (base64url), so parsing goes by fixed positions, never by
/// splitting on `_`.
public struct APIKeyText: Sendable, Equatable, CustomStringConvertible {
    public static let scheme = "dhk_"
    public static let prefixLength = 12
    public static let secretLength = 43
    /// Characters of a whole key.
    public static let length = 4 + prefixLength + 1 + secretLength

    private static let prefixAlphabet: [UInt8] = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    /// The record's lookup key (clear).
    public let prefix: String
    /// The secret part (never stored).
    public let secret: String

    /// A fresh random key.
    public static func random() -> APIKeyText {
        // 256 is a multiple of 32: every prefix symbol is exactly uniform.
        let prefix = SecureRandom.bytes(prefixLength).map { prefixAlphabet[Int($0 & 31)] }
        return APIKeyText(prefix: String(decoding: prefix, as: UTF8.self), secret: Base64URLText.encode(SecureRandom.bytes(32)))
    }

    private init(prefix: String, secret: String) {
        self.prefix = prefix
        self.secret = secret
    }

    /// Parses a presented key; nil unless it has exactly the shape above (length, scheme,
    /// separator, alphabets). Nothing longer than 60 bytes is ever looked at.
    public init?(parsing text: String) {
        let bytes = Array(text.utf8.prefix(Self.length + 1))
        guard bytes.count == Self.length, bytes.starts(with: Self.scheme.utf8) else { return nil }
        let prefix = bytes[4..<(4 + Self.prefixLength)]
        let separator = bytes[4 + Self.prefixLength]
        let secret = bytes[(5 + Self.prefixLength)...]
        guard separator == UInt8(ascii: "_"),
              prefix.allSatisfy({ Self.prefixAlphabet.contains($0) }),
              secret.allSatisfy({ Base64URLText.value(of: $0) != nil }) else { return nil }
        self.prefix = String(decoding: prefix, as: UTF8.self)
        self.secret = String(decoding: secret, as: UTF8.self)
    }

    /// True when `text` looks like an API key rather than a JWT (the `dhk_` scheme): how a
    /// `Bearer` value is routed.
    public static func looksLikeAPIKey(_ text: String) -> Bool { text.utf8.starts(with: scheme.utf8) }

    /// The whole key, shown to its creator once.
    public var text: String { Self.scheme + prefix + "_" + secret }

    /// What the store keeps: SHA-256 of the secret's UTF-8 text.
    public var storedHash: [UInt8] { HubCrypto.sha256(secret) }

    /// True when this key's secret matches `storedHash`, compared in constant time.
    public func verify(against storedHash: [UInt8]) -> Bool { ConstantTime.equals(self.storedHash, storedHash) }

    /// Only the prefix: safe to log.
    public var description: String { "dhk_\(prefix)_…" }
}
