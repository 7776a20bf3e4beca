import Foundation

extension UUID {
    /// The canonical lower-case text form (`8f0e7c1a-3b2d-…`), as Supabase writes `sub` and as
    /// every store key and wire id of the hub spells it. Formatted by hand: `uuidString` goes
    /// through `vfprintf` and then needs `lowercased()`, both on every authenticated request.
    public var lowercasedString: String {
        let hex: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: uuid) { raw in
            String(unsafeUninitializedCapacity: 36) { out in
                hex.withUTF8Buffer { digits in
                    var o = 0
                    for (i, byte) in raw.enumerated() {
                        if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = UInt8(ascii: "-"); o += 1 }
                        out[o] = digits[Int(byte >> 4)]
                        out[o + 1] = digits[Int(byte & 0x0f)]
                        o += 2
                    }
                    return o
                }
            }
        }
    }
}
