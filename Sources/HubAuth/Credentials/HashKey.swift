import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The secret key of the keyed hash (HMAC-SHA256) under which activation codes are stored.
///
/// Activation codes carry 60 bits, few enough that a plain SHA-256 of every possible code
/// could be tabulated by whoever reads the database; keyed, a stolen `activation_codes` table
/// is useless without this key, which lives in configuration (`--hash-key`) or, for the
/// embedded store, in a file of its own beside the database.
///
/// The key material is the UTF-8 bytes of the configured text (like `--supabase-jwt-secret`),
/// at least 32 bytes, at most 1,024. `openssl rand -hex 32` makes a good one; so does
/// `loadOrCreate(file:)`, which writes 64 hex digits of 32 random bytes.
public struct HashKey: Sendable, Equatable, CustomStringConvertible {
    /// Shortest accepted key: 256 bits of material, the HMAC-SHA256 block's worth of security.
    public static let minimumBytes = 32
    /// Longest accepted key (HMAC hashes longer keys down anyway; this only bounds input).
    public static let maximumBytes = 1_024

    /// The key material.
    public let bytes: [UInt8]

    /// A key from raw bytes; throws when there are fewer than 32 or more than 1,024.
    public init(bytes: [UInt8]) throws(HashKeyError) {
        guard bytes.count >= Self.minimumBytes else { throw .tooShort(bytes.count) }
        guard bytes.count <= Self.maximumBytes else { throw .tooLong(bytes.count) }
        self.bytes = bytes
    }

    /// A key from configuration text (`--hash-key`): its UTF-8 bytes, surrounding whitespace
    /// (a file's trailing newline) removed.
    public init(text: String) throws(HashKeyError) {
        try self.init(bytes: Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8))
    }

    /// A fresh random key: 64 hex digits of 32 random bytes.
    public static func random() -> HashKey {
        // 64 ASCII bytes: within the limits by construction.
        try! HashKey(text: HubCrypto.hex(SecureRandom.bytes(32)))
    }

    /// HMAC-SHA256 of `message` under this key.
    public func mac(_ message: [UInt8]) -> [UInt8] { HubCrypto.hmacSHA256(key: bytes, message) }

    /// Never prints the key (it ends up in logs and test output otherwise).
    public var description: String { "HashKey(\(bytes.count) bytes)" }

    /// The key in `path`, or, when there is no such file, a new random key written there with
    /// mode 0600 (only the hub's user may read it). Creation is exclusive (`O_EXCL`), so two
    /// processes starting together agree on one key: the loser reads the winner's file.
    /// A file readable by group or others is refused: the key would be as exposed as the codes.
    public static func loadOrCreate(file path: String) throws(HashKeyError) -> HashKey {
        for _ in 0..<3 {
            if let existing = try read(path) { return existing }
            let key = HashKey.random()
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0 {
                if errno == EEXIST { continue }  // created meanwhile by another process: read it
                throw .io(path, String(cString: strerror(errno)))
            }
            let text = Array(String(decoding: key.bytes, as: UTF8.self).utf8) + [0x0a]
            let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let synced = fsync(fd)
            let writeErrno = errno
            close(fd)
            guard written == text.count, synced == 0 else {
                unlink(path)  // never leave a half-written key for the next start to trust
                throw .io(path, "writing the new key failed: \(String(cString: strerror(writeErrno)))")
            }
            return key
        }
        throw .io(path, "the file keeps appearing and disappearing")
    }

    /// The key in `path`; nil when the file does not exist.
    private static func read(_ path: String) throws(HashKeyError) -> HashKey? {
        var info = stat()
        if stat(path, &info) != 0 {
            if errno == ENOENT { return nil }
            throw .io(path, String(cString: strerror(errno)))
        }
        if info.st_mode & 0o077 != 0 { throw .insecurePermissions(path, mode: Int(info.st_mode & 0o777)) }
        guard info.st_size <= Self.maximumBytes + 16 else { throw .tooLong(Int(info.st_size)) }
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path, "unreadable") }
        guard let text = String(data: data, encoding: .utf8) else { throw .io(path, "not UTF-8 text") }
        return try HashKey(text: text)
    }
}

/// Why a `HashKey` could not be built or loaded (a start-up configuration error).
public enum HashKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case tooLong(Int)
    case insecurePermissions(String, mode: Int)
    case io(String, String)

    public var description: String {
        switch self {
        case .tooShort(let n): return "hash key has \(n) bytes; at least \(HashKey.minimumBytes) are required"
        case .tooLong(let n): return "hash key has \(n) bytes; at most \(HashKey.maximumBytes) are accepted"
        case .insecurePermissions(let path, let mode):
            return "hash key file \(path) has mode \(String(mode, radix: 8)); it must not be readable by group or others (chmod 600)"
        case .io(let path, let message): return "hash key file \(path): \(message)"
        }
    }
}
