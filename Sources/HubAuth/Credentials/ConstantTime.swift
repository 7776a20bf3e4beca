/// Comparison whose running time does not depend on where two secrets first differ, so that
/// an attacker timing responses cannot learn a stored hash byte by byte.
public enum ConstantTime {
    /// True when `a` and `b` hold the same bytes. Every byte of the shorter length is visited
    /// whatever the contents; only the lengths (public: every hash here is 32 bytes) leak.
    @inline(never)
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference: UInt8 = a.count == b.count ? 0 : 1
        let n = min(a.count, b.count)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<n { difference |= pa[i] ^ pb[i] }
            }
        }
        return difference == 0
    }
}
