/// A device's session token: opaque, 256 random bits as base64url (43 characters), valid while
/// its key-value entry lives (a sliding TTL) and the device's token generation is unchanged.
///
/// The store never sees the token, only `storeKey` (SHA-256 of it, hex): someone reading Redis
/// (or a dump of it) cannot present the tokens it holds.
public struct DeviceToken: Sendable, Equatable, CustomStringConvertible {
    /// Characters of a token.
    public static let textLength = 43
    /// Key prefix of token entries in the key-value store.
    public static let keyPrefix = "devtok:"

    /// The token as sent over the wire.
    public let text: String

    /// A fresh random token.
    public static func random() -> DeviceToken { DeviceToken(text: Base64URLText.encode(SecureRandom.bytes(32))) }

    /// A presented token: nil when it cannot be one of ours (wrong length or alphabet), so that
    /// junk never reaches the store.
    public init?(presented: String) {
        guard presented.utf8.count == Self.textLength, Base64URLText.isAlphabet(presented.utf8[...]) else { return nil }
        self.text = presented
    }

    private init(text: String) { self.text = text }

    /// The key-value key of this token: `devtok:<hex sha256(token)>`.
    public var storeKey: String { Self.keyPrefix + HubCrypto.hex(HubCrypto.sha256(text)) }

    /// Never prints the token.
    public var description: String { "DeviceToken(…)" }
}
