// Frame encoding (RFC 6455 §5.2): header, optional masking key, payload, appended to a
// caller-owned buffer so that a connection's writes for one loop iteration share one array
// and nothing is allocated per frame once that array has grown.

/// Encodes single frames. Lengths are always minimally encoded (7-bit, then 16-bit, then
/// 64-bit), as RFC 6455 §5.2 requires of senders.
public enum WebSocketFrameEncoder {
    /// Bytes of header (including the masking key, if any) for a payload of `payloadCount`.
    @inlinable
    public static func headerSize(payloadCount: Int, masked: Bool) -> Int {
        let base = payloadCount <= 125 ? 2 : (payloadCount <= 0xFFFF ? 4 : 10)
        return masked ? base + 4 : base
    }

    /// Appends one frame. With `maskingKey` (client role) the payload is masked as it is
    /// appended; without it (server role) it is copied as is. `rsv1` marks the first frame of
    /// a permessage-deflate compressed message; the caller compresses.
    public static func encode(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, fin: Bool = true,
                              rsv1: Bool = false, maskingKey: UInt32? = nil, into out: inout [UInt8]) {
        let count = payload.count
        out.reserveCapacity(out.count + headerSize(payloadCount: count, masked: maskingKey != nil) + count)
        appendHeader(opcode, payloadCount: count, fin: fin, rsv1: rsv1, maskingKey: maskingKey, into: &out)
        guard count > 0 else { return }
        let payloadStart = out.count
        out.append(contentsOf: payload)
        if let key = maskingKey {
            // Masking in place after the copy: memcpy and an 8-byte XOR pass are both faster
            // than a byte-wise masked copy.
            out.withUnsafeMutableBytes { buffer in
                _ = WebSocketMask.apply(key: key, phase: 0, to: buffer.baseAddress! + payloadStart, count: count)
            }
        }
    }

    /// Appends a frame header for `payloadCount` bytes (the payload itself is the caller's).
    public static func appendHeader(_ opcode: WebSocketOpcode, payloadCount: Int, fin: Bool = true, rsv1: Bool = false,
                                    maskingKey: UInt32? = nil, into out: inout [UInt8]) {
        precondition(payloadCount >= 0)
        var first = opcode.rawValue
        if fin { first |= 0x80 }
        if rsv1 { first |= 0x40 }
        out.append(first)
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        if payloadCount <= 125 {
            out.append(maskBit | UInt8(payloadCount))
        } else if payloadCount <= 0xFFFF {
            out.append(maskBit | 126)
            out.append(UInt8(truncatingIfNeeded: payloadCount >> 8))
            out.append(UInt8(truncatingIfNeeded: payloadCount))
        } else {
            out.append(maskBit | 127)
            let length = UInt64(payloadCount)
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: length >> UInt64(shift)))
            }
        }
        if let key = maskingKey {
            let (a, b, c, d) = WebSocketMask.wireBytes(of: key)
            out.append(a)
            out.append(b)
            out.append(c)
            out.append(d)
        }
    }

    /// Writes a header into `base` (which must have room for `headerSize`); returns its size.
    /// Used where the payload is already in place after a reserved gap (compressed frames).
    static func writeHeader(_ opcode: WebSocketOpcode, payloadCount: Int, fin: Bool, rsv1: Bool, maskingKey: UInt32?,
                            at base: UnsafeMutableRawPointer) -> Int {
        var first = opcode.rawValue
        if fin { first |= 0x80 }
        if rsv1 { first |= 0x40 }
        base.storeBytes(of: first, as: UInt8.self)
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        var size: Int
        if payloadCount <= 125 {
            base.storeBytes(of: maskBit | UInt8(payloadCount), toByteOffset: 1, as: UInt8.self)
            size = 2
        } else if payloadCount <= 0xFFFF {
            base.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
            base.storeBytes(of: UInt16(payloadCount).bigEndian, toByteOffset: 2, as: UInt16.self)
            size = 4
        } else {
            base.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
            base.storeBytes(of: UInt64(payloadCount).bigEndian, toByteOffset: 2, as: UInt64.self)
            size = 10
        }
        if let key = maskingKey {
            base.storeBytes(of: key.littleEndian, toByteOffset: size, as: UInt32.self)
            size += 4
        }
        return size
    }

    /// The payload of a close frame: the code in network byte order, then the reason as UTF-8,
    /// cut to fit the 125-byte control-frame limit without splitting a character.
    /// The code is written as given: check `WebSocketCloseCode.isValidOnWire` before sending
    /// a code that came from elsewhere (1005, 1006 and 1015 must never be sent).
    public static func closePayload(_ code: WebSocketCloseCode, reason: String) -> [UInt8] {
        var payload: [UInt8] = [UInt8(truncatingIfNeeded: code.rawValue >> 8), UInt8(truncatingIfNeeded: code.rawValue)]
        var utf8 = Array(reason.utf8)
        if utf8.count > 123 {
            // Back up over continuation bytes (10xxxxxx) so the cut falls before a lead byte.
            var cut = 123
            while cut > 0 && utf8[cut] & 0xC0 == 0x80 { cut -= 1 }
            utf8.removeSubrange(cut...)
        }
        payload.append(contentsOf: utf8)
        return payload
    }
}
