/// A device's long-lived secret: 256 random bits as base64url (43 characters), handed to the
/// device once (at registration or rotation) and stored only as its SHA-256.
///
/// A plain (unkeyed, unsalted) hash is enough here because the secret itself has 256 bits of
/// entropy: no table or guessing attack can invert it, unlike a password or a short code.
public struct DeviceSecret: Sendable, Equatable, CustomStringConvertible {
    /// Characters of a secret (32 bytes in unpadded base64url).
    public static let textLength = 43

    /// The secret as sent over the wire.
    public let text: String

    /// A fresh random secret.
    public static func random() -> DeviceSecret { DeviceSecret(text: Base64URLText.encode(SecureRandom.bytes(32))) }

    private init(text: String) { self.text = text }

    /// What the store keeps: SHA-256 of the text's UTF-8 bytes.
    public var storedHash: [UInt8] { HubCrypto.sha256(text) }

    /// True when `presented` is the secret whose `storedHash` is `storedHash`, compared in
    /// constant time. Presented text of any length but 43 is refused before hashing (input
    /// limit; the length of a valid secret is public).
    public static func verify(_ presented: String, against storedHash: [UInt8]) -> Bool {
        let digest = presented.utf8.count == textLength ? HubCrypto.sha256(presented) : HubCrypto.sha256("")
        // Compared even for a wrongly sized input, so that the two failures take the same time.
        return ConstantTime.equals(digest, storedHash) && presented.utf8.count == textLength
    }

    /// Never prints the secret.
    public var description: String { "DeviceSecret(…)" }
}
