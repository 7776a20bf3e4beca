// The send side: permessage-deflate compression (RFC 7692 §7.2.1), framing and, for clients,
// masking, appended to a caller-owned buffer. Messages go out as single frames: the connection
// shell already holds the whole message, and one frame is the cheapest form for both ends.
//
// Compression. A message above `compressionThreshold` bytes is compressed when deflate was
// negotiated: compressed straight into `out` after a reserved 10/14-byte gap, then the header is
// written in front of it and the gap closed (a memmove, negligible next to deflate itself).
// With context takeover the deflater lives as long as the writer (the peer's inflater mirrors
// its window). Without it, the deflater is freed after every message so an idle connection
// holds no zlib state, and a message that did not shrink is sent uncompressed instead (allowed
// per message; impossible with context takeover, where the window has already absorbed it).
//
// memLevel 8 (zlib's default) by default, deliberately: it sizes the hash chains to the 32 KiB
// window, which is where deflate's speed and ratio come from; lower levels save 64 KiB (7) or
// 96 KiB (6) per deflater but search less. The real memory lever is context takeover, which
// decides whether ~256 KiB is held per connection for its whole life or only during a call;
// that is negotiated (PerMessageDeflate.Policy), and memLevel stays a parameter.
//
// Size: MemoryLayout<WebSocketWriter>.size == 21 bytes, stride 24, on x86_64 (checked by
// WebSocketReaderMemoryTests); the deflater exists only while compressing, or for the
// connection's life with context takeover.

/// Message writer: compression above `compressionThreshold` bytes when negotiated, framing, and
/// masking for clients. One per connection.
public struct WebSocketWriter {
    // Widest first, so the struct packs without padding.
    private let threshold: Int
    private var deflater: ZlibDeflater?
    private let masks: Bool
    /// Our own deflate window bits; 0 when permessage-deflate was not negotiated.
    private let deflateWindowBits: UInt8
    private let deflaterPerMessage: Bool
    private let level: UInt8
    private let memLevel: UInt8

    /// - Parameters:
    ///   - role: `.client` masks every frame with a fresh random key; `.server` never masks.
    ///   - deflate: negotiated permessage-deflate parameters, or nil.
    ///   - compressionThreshold: messages of at most this many bytes go out uncompressed
    ///     (deflate's per-message overhead outweighs the gain on tiny messages).
    public init(role: WebSocketRole, deflate: PerMessageDeflate.Parameters?, compressionThreshold: Int = 256) {
        self.init(role: role, deflate: deflate, compressionThreshold: compressionThreshold, compressionLevel: 6, memLevel: 8)
    }

    /// - Parameters:
    ///   - compressionLevel: zlib level 0...9. 6 is zlib's default; 1 is about twice as fast
    ///     for ~10 % larger output on JSON.
    ///   - memLevel: zlib memLevel 1...9 (see the file comment for why 8).
    public init(role: WebSocketRole, deflate: PerMessageDeflate.Parameters?, compressionThreshold: Int,
                compressionLevel: Int, memLevel: Int) {
        precondition((0...9).contains(compressionLevel) && (1...9).contains(memLevel))
        masks = role == .client
        threshold = max(0, compressionThreshold)
        level = UInt8(compressionLevel)
        self.memLevel = UInt8(memLevel)
        if let deflate {
            deflateWindowBits = UInt8(deflate.sendWindowBits(role))
            deflaterPerMessage = !deflate.sendsWithContextTakeover(role)
        } else {
            deflateWindowBits = 0
            deflaterPerMessage = true
        }
    }

    /// Whether a deflater (zlib state) is currently allocated. For tests and metrics.
    public var holdsDeflater: Bool { deflater != nil }

    /// Appends a complete data message (text or binary) as one frame, compressed if
    /// negotiated and above the threshold. `.text` payloads must be valid UTF-8 (not checked:
    /// the application produced them).
    public mutating func writeMessage(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        precondition(opcode.isDataStart, "writeMessage takes .text or .binary")
        let key: UInt32? = masks ? OpenSSLCrypto.randomUInt32() : nil
        guard deflateWindowBits != 0 && payload.count > threshold else {
            WebSocketFrameEncoder.encode(opcode, payload: payload, maskingKey: key, into: &out)
            return
        }
        let engine: ZlibDeflater
        if let existing = deflater {
            engine = existing
        } else if let created = try? ZlibDeflater(windowBits: Int(deflateWindowBits), level: Int(level), memLevel: Int(memLevel)) {
            engine = created
            deflater = created
        } else {
            // zlib could not allocate: sending uncompressed is always allowed.
            WebSocketFrameEncoder.encode(opcode, payload: payload, maskingKey: key, into: &out)
            return
        }
        Self.appendCompressed(opcode, payload: payload, engine: engine, maskingKey: key,
                              fallBackWhenLarger: deflaterPerMessage, into: &out)
        if deflaterPerMessage { deflater = nil }
    }

    /// Appends a control frame (close, ping, pong; payload ≤ 125 bytes). Never compressed.
    public mutating func writeControl(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        precondition(opcode.isControl, "writeControl takes .close, .ping or .pong")
        precondition(payload.count <= 125, "control frame payload is limited to 125 bytes")
        WebSocketFrameEncoder.encode(opcode, payload: payload, maskingKey: masks ? OpenSSLCrypto.randomUInt32() : nil, into: &out)
    }

    /// Appends a close frame with `code` and `reason` (cut to fit 125 bytes on a character boundary).
    public mutating func writeClose(_ code: WebSocketCloseCode, reason: String = "", into out: inout [UInt8]) {
        let payload = WebSocketFrameEncoder.closePayload(code, reason: reason)
        payload.withUnsafeBytes { writeControl(.close, payload: $0, into: &out) }
    }

    /// A complete server frame encoded once for many recipients. Compressed only if the
    /// parameters allow a context-free encoding (server_no_context_takeover): then every
    /// recipient's inflater can decode it whatever it decoded before, and its own writer never
    /// refers back to it. The fan-out caller groups recipients by negotiated parameters (the
    /// window bits must match too) and sends uncompressed frames to the rest.
    public static func encodeShared(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer,
                                    compress: PerMessageDeflate.Parameters?, compressionThreshold: Int = 256,
                                    compressionLevel: Int = 6, memLevel: Int = 8) -> [UInt8] {
        var out: [UInt8] = []
        if let parameters = compress, parameters.serverNoContextTakeover, opcode.isDataStart, payload.count > compressionThreshold,
           let engine = try? ZlibDeflater(windowBits: parameters.serverMaxWindowBits, level: compressionLevel, memLevel: memLevel) {
            appendCompressed(opcode, payload: payload, engine: engine, maskingKey: nil, fallBackWhenLarger: true, into: &out)
        } else {
            WebSocketFrameEncoder.encode(opcode, payload: payload, into: &out)
        }
        return out
    }

    /// Compresses `payload` into one RSV1 frame appended to `out`. With `fallBackWhenLarger`
    /// (only when the deflater's window is discarded afterwards) a result that is not smaller
    /// than the input is replaced by the plain frame.
    private static func appendCompressed(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, engine: ZlibDeflater,
                                         maskingKey: UInt32?, fallBackWhenLarger: Bool, into out: inout [UInt8]) {
        let start = out.count
        let reserved = maskingKey == nil ? 10 : 14
        out.append(contentsOf: repeatElement(0, count: reserved))
        let compressedCount = engine.compress(payload, appendingTo: &out)
        if fallBackWhenLarger && compressedCount >= payload.count {
            out.removeLast(out.count - start)
            WebSocketFrameEncoder.encode(opcode, payload: payload, maskingKey: maskingKey, into: &out)
            return
        }
        let headerSize = WebSocketFrameEncoder.headerSize(payloadCount: compressedCount, masked: maskingKey != nil)
        out.withUnsafeMutableBytes { buffer in
            let base = buffer.baseAddress! + start
            // Close the gap between the reserved header space and the compressed bytes.
            if headerSize < reserved { (base + headerSize).copyMemory(from: base + reserved, byteCount: compressedCount) }
            _ = WebSocketFrameEncoder.writeHeader(opcode, payloadCount: compressedCount, fin: true, rsv1: true,
                                                  maskingKey: maskingKey, at: base)
            if let key = maskingKey { WebSocketMask.apply(key: key, phase: 0, to: base + headerSize, count: compressedCount) }
        }
        if headerSize < reserved { out.removeLast(reserved - headerSize) }
    }
}
