// SHA-256 and HMAC-SHA256 from OpenSSL's libcrypto, which the package links already (TLS,
// WebSocket handshakes): constant-time, assembly-optimized, and audited, where a Swift
// implementation (HubMigrations' SHA256) would be none of these. `HMAC()` comes in through
// COpenSSL's <openssl/ssl.h>, which includes <openssl/hmac.h>.

import COpenSSL

/// Hashes for stored credentials: SHA-256 of high-entropy secrets (device secrets, tokens,
/// API key secrets), HMAC-SHA256 under the hub's `HashKey` for low-entropy activation codes.
public enum HubCrypto {
    /// Digest length of SHA-256 and HMAC-SHA256.
    public static let digestLength = 32

    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: digestLength)
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            digest.withUnsafeMutableBufferPointer { out in
                EVP_Digest(input.baseAddress, input.count, out.baseAddress, &length, EVP_sha256(), nil)
            }
        }
        // A built-in digest fails only when allocation fails: nothing a caller could handle.
        precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed")
        return digest
    }

    /// SHA-256 of the UTF-8 bytes of `text`.
    public static func sha256(_ text: String) -> [UInt8] { sha256(Array(text.utf8)) }

    /// HMAC-SHA256 (RFC 2104) of `message` under `key`.
    public static func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        precondition(key.count <= Int(Int32.max), "HMAC key too long")
        var digest = [UInt8](repeating: 0, count: digestLength)
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                digest.withUnsafeMutableBufferPointer { out in
                    HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.baseAddress?.assumingMemoryBound(to: UInt8.self),
                         m.count, out.baseAddress, &length)
                }
            }
        }
        // As above: HMAC with a built-in digest fails only when allocation fails. An empty
        // message has a nil base address, which HMAC accepts with a length of 0.
        precondition(result != nil && length == 32, "HMAC(SHA-256) failed")
        return digest
    }

    /// Lowercase hex of `bytes` (store keys such as `devtok:<hex sha256(token)>`).
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
