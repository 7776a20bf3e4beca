/// Strict base64url without padding (RFC 4648 §5), the only encoding JWS compact serialization
/// allows (RFC 7515 §2).
///
/// Strict means: no `=` padding, no whitespace, no characters outside the alphabet, a length
/// that is not 1 mod 4, and zero unused bits in the last character. The last rule matters: a
/// lenient decoder maps several spellings of a segment to the same bytes, so one signature
/// could be presented as several different token strings (harmless for the signature, but it
/// defeats any bookkeeping keyed by the token text).
enum Base64URL {
    /// Decoded value (0...63) per byte, 0xFF for bytes outside the alphabet. A tuple-free
    /// `[UInt8]` built once; callers borrow its storage for the whole decode loop so the hot loop
    /// does no bounds or lazy-initialisation checks.
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    /// Bytes that `count` base64url characters decode to, or nil when no valid encoding has
    /// that length.
    @inline(__always)
    static func decodedCount(_ count: Int) -> Int? {
        switch count & 3 {
        case 0: return count / 4 * 3
        case 2: return count / 4 * 3 + 1
        case 3: return count / 4 * 3 + 2
        default: return nil
        }
    }

    /// Decodes `input` into `output` (which must hold `decodedCount(input.count)` bytes).
    /// Returns the number of bytes written, or nil when the input is not canonical base64url.
    static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawPointer) -> Int? {
        guard let outCount = decodedCount(input.count) else { return nil }
        if input.isEmpty { return 0 }
        return table.withUnsafeBufferPointer { t -> Int? in
            let src = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let dst = output.assumingMemoryBound(to: UInt8.self)
            let full = input.count & ~3
            var i = 0, o = 0
            // OR-accumulate the looked-up values: any 0xFF (invalid byte) leaves bit 7 set,
            // so the loop needs one check at the end instead of one per character.
            var bad: UInt8 = 0
            while i < full {
                let a = t[Int(src[i])], b = t[Int(src[i + 1])], c = t[Int(src[i + 2])], d = t[Int(src[i + 3])]
                bad |= a | b | c | d
                dst[o] = (a << 2) | (b >> 4)
                dst[o + 1] = (b << 4) | (c >> 2)
                dst[o + 2] = (c << 6) | d
                i += 4
                o += 3
            }
            switch input.count - full {
            case 2:
                let a = t[Int(src[i])], b = t[Int(src[i + 1])]
                bad |= a | b
                if b & 0x0F != 0 { return nil }  // unused low bits must be zero
                dst[o] = (a << 2) | (b >> 4)
            case 3:
                let a = t[Int(src[i])], b = t[Int(src[i + 1])], c = t[Int(src[i + 2])]
                bad |= a | b | c
                if c & 0x03 != 0 { return nil }
                dst[o] = (a << 2) | (b >> 4)
                dst[o + 1] = (b << 4) | (c >> 2)
            default:
                break
            }
            return bad & 0x80 == 0 ? outCount : nil
        }
    }
}
