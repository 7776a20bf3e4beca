// The only file that calls OpenSSL: SHA-1 for Sec-WebSocket-Accept (RFC 6455 §4.2.2) through
// the EVP API. Unpredictable bytes for client handshake keys and masking keys (RFC 6455 §5.3
// asks for a strong source of entropy) come from the standard library's generator (the
// kernel's getrandom): COpenSSL's umbrella header does not include <openssl/rand.h>, and the
// client role, the only one that masks, is for tools and tests rather than the server's hot path.

import COpenSSL

/// SHA-1 from OpenSSL's libcrypto, and strong random bytes.
enum OpenSSLCrypto {
    /// SHA-1 digest (20 bytes).
    static func sha1(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { out in
            EVP_Digest(bytes.baseAddress, bytes.count, out.baseAddress, &length, EVP_sha1(), nil)
        }
        // EVP_Digest with a built-in digest only fails on allocation failure.
        precondition(ok == 1 && length == 20, "EVP_Digest(SHA-1) failed")
        return digest
    }

    /// Fills `buffer` with cryptographically strong random bytes (the kernel's generator).
    static func randomBytes(_ buffer: UnsafeMutableRawBufferPointer) {
        var generator = SystemRandomNumberGenerator()
        var i = 0
        while i < buffer.count {
            var word = generator.next()
            for _ in 0..<min(8, buffer.count - i) {
                buffer[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
    }

    /// A random 32-bit value (a masking key).
    static func randomUInt32() -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { randomBytes($0) }
        return value
    }
}
