// Masking (RFC 6455 §5.3): payload byte i is XORed with key byte (i mod 4). The reader unmasks
// in place in the event loop's receive buffer and the client writer masks in place in its
// output buffer, eight bytes per step.
//
// The key is kept as a UInt32 whose *little-endian* bytes are the four key bytes in wire order.
// A payload piece that starts at key position `phase` (because the frame arrived in several
// reads) uses the key rotated right by 8·phase bits; duplicated into a UInt64 it then lines up
// with an unaligned little-endian 8-byte load of the payload.

/// Applies (or removes: XOR is its own inverse) a WebSocket masking key.
public enum WebSocketMask {
    /// Reads a masking key from its four wire bytes.
    @inlinable
    public static func key(fromWire bytes: UnsafeRawPointer) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self))
    }

    /// Writes a key's four wire bytes (the inverse of `key(fromWire:)`).
    @inlinable
    public static func wireBytes(of key: UInt32) -> (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(truncatingIfNeeded: key), UInt8(truncatingIfNeeded: key >> 8),
         UInt8(truncatingIfNeeded: key >> 16), UInt8(truncatingIfNeeded: key >> 24))
    }

    /// XORs `count` bytes at `base` with `key`, the first byte taking key byte `phase` (0...3).
    /// Returns the phase for the byte after the last one, for the next piece of the same frame.
    @discardableResult
    public static func apply(key: UInt32, phase: Int, to base: UnsafeMutableRawPointer, count: Int) -> Int {
        guard count > 0 else { return phase }
        let shift = UInt32(truncatingIfNeeded: (phase & 3) &* 8)
        let rotated = shift == 0 ? key : (key >> shift) | (key << (32 &- shift))
        let wide = UInt64(rotated) | (UInt64(rotated) << 32)
        var offset = 0
        // 32 bytes per iteration so the compiler keeps four independent load/xor/store chains.
        while count &- offset >= 32 {
            let p = base + offset
            for lane in stride(from: 0, to: 32, by: 8) {
                let word = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: lane, as: UInt64.self))
                p.storeBytes(of: (word ^ wide).littleEndian, toByteOffset: lane, as: UInt64.self)
            }
            offset &+= 32
        }
        while count &- offset >= 8 {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            base.storeBytes(of: (word ^ wide).littleEndian, toByteOffset: offset, as: UInt64.self)
            offset &+= 8
        }
        // Tail: offset is a multiple of 8 here, so byte j of the tail uses rotated key byte j % 4.
        var tailKey = wide
        while offset < count {
            let byte = base.load(fromByteOffset: offset, as: UInt8.self)
            base.storeBytes(of: byte ^ UInt8(truncatingIfNeeded: tailKey), toByteOffset: offset, as: UInt8.self)
            tailKey >>= 8
            offset &+= 1
        }
        return (phase &+ count) & 3
    }

    /// Buffer form of `apply(key:phase:to:count:)`.
    @discardableResult
    public static func apply(key: UInt32, phase: Int, to buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress else { return phase }
        return apply(key: key, phase: phase, to: base, count: buffer.count)
    }
}
