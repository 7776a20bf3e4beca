/// Unpredictable bytes for every credential the hub hands out (activation codes, device
/// secrets, device tokens, API keys, hash keys, token generations).
///
/// `SystemRandomNumberGenerator` is the kernel's CSPRNG on Linux (`getrandom(2)`, blocking only
/// until the pool is first seeded at boot), so no userspace generator state can be cloned,
/// forked or left unseeded.
public enum SecureRandom {
    /// `count` random bytes (0...65,536: nothing the hub needs is larger).
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition((0...65_536).contains(count), "SecureRandom.bytes(\(count)) outside 0...65536")
        var generator = SystemRandomNumberGenerator()
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = generator.next()
            for _ in 0..<min(8, count - i) {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }

    /// A random 64-bit value.
    public static func uint64() -> UInt64 {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }
}
