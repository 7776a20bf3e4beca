// The receive side of a WebSocket connection: frame parser (RFC 6455 §5), message assembly,
// permessage-deflate inflate (RFC 7692 §7.2.2) and incremental UTF-8 validation, in one
// resumable state machine fed with whatever the socket produced.
//
// Copies. The input is the event loop's receive buffer and is unmasked in place. A message that
// is one frame, uncompressed and entirely inside the input is delivered straight from there:
// no copy, no allocation. Only what is incomplete is copied into the reader: a frame header
// split across reads (into 16 inline bytes), a control frame split across reads, and the data
// of a fragmented or split message (into `messageBuffer`, bounded by the limits). Compressed
// messages are inflated as their bytes arrive, so compressed bytes are never buffered.
//
// Fail fast. Everything that can be judged early is: the first two header bytes are checked
// before the rest of the header arrives, the length before any payload, and text is validated
// piece by piece as it is unmasked (or inflated), so invalid UTF-8 fails the connection while
// the rest of the frame is still on the wire (Autobahn 6.4.x).
//
// Size (x86_64, measured by WebSocketReaderMemoryTests): MemoryLayout<WebSocketReader>.size ==
// 82 bytes, stride 88; the two reassembly arrays are empty (no heap) on an idle connection,
// `messageBuffer` keeps at most 4 KiB of capacity between messages, and the inflater (39 KiB at
// 15 bits) exists only while the peer compresses with context takeover or while a compressed
// message is being received.

/// Frame parser, message assembler, permessage-deflate inflater and UTF-8 validator for one
/// connection. Feed it every received byte in order with `read`.
public struct WebSocketReader {
    private enum Stage: UInt8 {
        case header, payload, finished
    }

    /// Capacity `messageBuffer` may keep between messages: enough for the typical small
    /// fragmented or split message without re-allocating, small enough for idle connections.
    static let retainedBufferCapacity = 4096

    // Stored properties are declared widest first so the struct packs without padding
    // (see the size in the file comment).

    // Configuration.
    private let maxFrameBytes: Int
    private let maxMessageBytes: Int

    // Current frame.
    private var frameRemaining = 0
    /// A frame header split across reads, collected here (at most 14 bytes).
    private var headerStorage: (UInt64, UInt64) = (0, 0)

    // Current message (data frames); control frames never touch these.
    private var messageBuffer: [UInt8] = []
    private var controlBuffer: [UInt8] = []
    private var inflater: ZlibInflater?

    private var maskKey: UInt32 = 0

    private let requiresMask: Bool
    /// The peer's deflate window bits; 0 when permessage-deflate was not negotiated.
    private let inflateWindowBits: UInt8
    /// The peer resets its compressor per message, so ours can be freed between messages.
    private let inflaterPerMessage: Bool
    private var stage = Stage.header
    private var headerFill: UInt8 = 0
    private var frameOpcode = WebSocketOpcode.continuation
    private var frameFin = false
    private var frameMasked = false
    private var maskPhase: UInt8 = 0
    private var messageOpcode: WebSocketOpcode?
    private var messageCompressed = false
    /// A DEFLATE block with BFINAL ended the stream inside this message; the rest is ignored.
    private var inflateStreamEnded = false
    /// Some compressed bytes arrived for this message (an empty compressed payload is taken as
    /// an empty message rather than fed to zlib, which would reject a lone 00 00 FF FF).
    private var inflateSawInput = false
    private var utf8 = UTF8StreamValidator()

    /// - Parameters:
    ///   - role: `.server` requires masked frames, `.client` unmasked ones.
    ///   - limits: frame and message size limits (1009 when exceeded).
    ///   - deflate: the negotiated permessage-deflate parameters, or nil (RSV1 is then a 1002).
    public init(role: WebSocketRole, limits: WebSocketLimits = WebSocketLimits(), deflate: PerMessageDeflate.Parameters?) {
        requiresMask = role == .server
        maxFrameBytes = max(0, limits.maxFrameBytes)
        maxMessageBytes = max(0, limits.maxMessageBytes)
        if let deflate {
            inflateWindowBits = UInt8(deflate.receiveWindowBits(role))
            inflaterPerMessage = !deflate.receivesWithContextTakeover(role)
        } else {
            inflateWindowBits = 0
            inflaterPerMessage = true
        }
    }

    /// True after a close frame or a protocol error: input is ignored from then on.
    public var isFinished: Bool { stage == .finished }

    /// Whether an inflater (zlib state) is currently allocated. For tests and metrics.
    public var holdsInflater: Bool { inflater != nil }

    /// Heap bytes currently held for reassembly (capacity of the internal buffers).
    public var bufferedCapacity: Int { messageBuffer.capacity + controlBuffer.capacity }

    /// Consumes all of `bytes` (unmasking in place), calling `onEvent` for each complete event
    /// in order; throws on the first protocol violation (the caller then closes with its
    /// code). After a throw — the reader's or `onEvent`'s — or after a close event, further
    /// input is ignored.
    public mutating func read(_ bytes: UnsafeMutableRawBufferPointer, onEvent: (WebSocketEvent) throws -> Void) throws {
        guard stage != .finished, let base = bytes.baseAddress else { return }
        let end = bytes.count
        var offset = 0
        do {
            while offset < end && stage != .finished {
                if stage == .header {
                    offset = try readHeader(base, from: offset, end: end, onEvent)
                } else {
                    offset = try readPayload(base, from: offset, end: end, onEvent)
                }
            }
        } catch {
            finish()
            throw error
        }
    }

    // MARK: - Header

    /// Parses (or collects) one frame header starting at `offset`; returns the new offset.
    private mutating func readHeader(_ base: UnsafeMutableRawPointer, from start: Int, end: Int,
                                     _ onEvent: (WebSocketEvent) throws -> Void) throws -> Int {
        var offset = start
        if headerFill == 0 && end - offset >= 2 {
            // Fast path: the whole header is in the input; parse it where it lies.
            let size = try headerSize(base.load(fromByteOffset: offset, as: UInt8.self),
                                       base.load(fromByteOffset: offset + 1, as: UInt8.self))
            if end - offset >= size {
                try beginFrame(header: UnsafeRawPointer(base + offset), onEvent)
                return offset + size
            }
        }
        // Slow path: the header straddles reads; collect it in the inline storage.
        var storage = headerStorage
        var fill = Int(headerFill)
        let size: Int = try withUnsafeMutableBytes(of: &storage) { header in
            while fill < 2 && offset < end {
                header[fill] = base.load(fromByteOffset: offset, as: UInt8.self)
                fill += 1
                offset += 1
            }
            guard fill >= 2 else { return 0 }
            let size = try headerSize(header[0], header[1])
            let take = min(size - fill, end - offset)
            if take > 0 {
                (header.baseAddress! + fill).copyMemory(from: base + offset, byteCount: take)
                fill += take
                offset += take
            }
            return size
        }
        guard size > 0, fill == size else {
            headerStorage = storage
            headerFill = UInt8(fill)
            return offset
        }
        headerFill = 0
        try withUnsafeBytes(of: &storage) { header in
            try beginFrame(header: header.baseAddress!, onEvent)
        }
        return offset
    }

    /// Validates the first two header bytes against the protocol and the connection's state,
    /// and returns the full header size (2–14 bytes). Everything that makes a frame invalid
    /// regardless of its length is caught here, before the rest of the header arrives.
    private func headerSize(_ b0: UInt8, _ b1: UInt8) throws -> Int {
        if b0 & 0x30 != 0 { throw WebSocketProtocolError.framing("reserved bit RSV2 or RSV3 set") }
        guard let opcode = WebSocketOpcode(rawValue: b0 & 0x0F) else {
            throw WebSocketProtocolError.framing("reserved opcode \(b0 & 0x0F)")
        }
        let fin = b0 & 0x80 != 0
        let rsv1 = b0 & 0x40 != 0
        if opcode.isControl {
            if !fin { throw WebSocketProtocolError.framing("fragmented control frame") }
            if rsv1 { throw WebSocketProtocolError.framing("RSV1 set on a control frame") }
            if b1 & 0x7F > 125 { throw WebSocketProtocolError.framing("control frame payload longer than 125 bytes") }
        } else if opcode == .continuation {
            if messageOpcode == nil { throw WebSocketProtocolError.framing("continuation frame without a message to continue") }
            if rsv1 { throw WebSocketProtocolError.framing("RSV1 set on a continuation frame") }
        } else {
            if messageOpcode != nil { throw WebSocketProtocolError.framing("new data frame inside a fragmented message") }
            if rsv1 && inflateWindowBits == 0 { throw WebSocketProtocolError.framing("RSV1 set without permessage-deflate") }
        }
        let masked = b1 & 0x80 != 0
        if masked != requiresMask {
            throw WebSocketProtocolError.framing(requiresMask ? "unmasked frame from a client" : "masked frame from a server")
        }
        let length7 = b1 & 0x7F
        return 2 + (length7 == 126 ? 2 : (length7 == 127 ? 8 : 0)) + (masked ? 4 : 0)
    }

    /// Sets up the frame whose complete header (already checked by `headerSize`) is at `header`.
    private mutating func beginFrame(header: UnsafeRawPointer, _ onEvent: (WebSocketEvent) throws -> Void) throws {
        let b0 = header.load(as: UInt8.self)
        let b1 = header.load(fromByteOffset: 1, as: UInt8.self)
        let opcode = WebSocketOpcode(rawValue: b0 & 0x0F)!
        var length: Int
        var keyOffset = 2
        switch b1 & 0x7F {
        case 126:
            // Lengths that could have used a shorter form are accepted (RFC 6455 §5.2 only
            // asks senders for the minimal encoding).
            length = Int(UInt16(bigEndian: header.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            keyOffset = 4
        case 127:
            let wide = UInt64(bigEndian: header.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            if wide >> 63 != 0 { throw WebSocketProtocolError.framing("64-bit payload length with the most significant bit set") }
            if wide > UInt64(maxFrameBytes) { throw WebSocketProtocolError.tooBig("frame of \(wide) bytes exceeds the \(maxFrameBytes)-byte limit") }
            length = Int(wide)
            keyOffset = 10
        default:
            length = Int(b1 & 0x7F)
        }
        frameOpcode = opcode
        frameFin = b0 & 0x80 != 0
        frameMasked = b1 & 0x80 != 0
        maskKey = frameMasked ? WebSocketMask.key(fromWire: header + keyOffset) : 0
        maskPhase = 0
        frameRemaining = length
        if !opcode.isControl {
            if length > maxFrameBytes {
                throw WebSocketProtocolError.tooBig("frame of \(length) bytes exceeds the \(maxFrameBytes)-byte limit")
            }
            if opcode != .continuation {
                messageOpcode = opcode
                messageCompressed = b0 & 0x40 != 0
                inflateStreamEnded = false
                inflateSawInput = false
                utf8.reset()
            }
            // Uncompressed, the message's final size is known frame by frame: refuse before
            // buffering. Compressed, the inflated size is bounded while inflating.
            if !messageCompressed && messageBuffer.count + length > maxMessageBytes {
                throw WebSocketProtocolError.tooBig("message exceeds the \(maxMessageBytes)-byte limit")
            }
        }
        stage = .payload
        if length == 0 {
            // Nothing more will arrive for this frame: complete it now, not on the next read.
            try consume(UnsafeMutableRawBufferPointer(start: nil, count: 0), frameDone: true, onEvent)
        }
    }

    // MARK: - Payload

    private mutating func readPayload(_ base: UnsafeMutableRawPointer, from offset: Int, end: Int,
                                      _ onEvent: (WebSocketEvent) throws -> Void) throws -> Int {
        let take = min(frameRemaining, end - offset)
        let chunk = UnsafeMutableRawBufferPointer(start: base + offset, count: take)
        if frameMasked {
            maskPhase = UInt8(WebSocketMask.apply(key: maskKey, phase: Int(maskPhase), to: base + offset, count: take))
        }
        frameRemaining -= take
        try consume(chunk, frameDone: frameRemaining == 0, onEvent)
        return offset + take
    }

    /// Handles the next unmasked piece of the current frame's payload.
    private mutating func consume(_ chunk: UnsafeMutableRawBufferPointer, frameDone: Bool,
                                  _ onEvent: (WebSocketEvent) throws -> Void) throws {
        if frameDone { stage = .header }
        if frameOpcode.isControl {
            try consumeControl(UnsafeRawBufferPointer(chunk), frameDone: frameDone, onEvent)
            return
        }
        if messageCompressed {
            try inflate(UnsafeRawBufferPointer(chunk))
            if frameDone && frameFin { try finishCompressedMessage(onEvent) }
            return
        }
        let isText = messageOpcode == .text
        if isText && !utf8.feed(UnsafeRawBufferPointer(chunk)) {
            throw WebSocketProtocolError.invalidPayload("invalid UTF-8 in text message")
        }
        guard frameDone && frameFin else {
            if chunk.count > 0 { messageBuffer.append(contentsOf: chunk) }
            return
        }
        if isText && !utf8.isComplete {
            throw WebSocketProtocolError.invalidPayload("text message ends inside a UTF-8 sequence")
        }
        messageOpcode = nil
        if messageBuffer.isEmpty {
            // The whole message is this piece of the caller's buffer: deliver it in place.
            let payload = UnsafeRawBufferPointer(chunk)
            try onEvent(isText ? .text(payload) : .binary(payload))
        } else {
            messageBuffer.append(contentsOf: chunk)
            try deliverBufferedMessage(isText: isText, onEvent)
        }
    }

    private mutating func deliverBufferedMessage(isText: Bool, _ onEvent: (WebSocketEvent) throws -> Void) throws {
        try messageBuffer.withUnsafeBytes { payload in
            try onEvent(isText ? .text(payload) : .binary(payload))
        }
        messageBuffer.removeAll(keepingCapacity: messageBuffer.capacity <= Self.retainedBufferCapacity)
    }

    private mutating func consumeControl(_ chunk: UnsafeRawBufferPointer, frameDone: Bool,
                                         _ onEvent: (WebSocketEvent) throws -> Void) throws {
        guard frameDone else {
            controlBuffer.append(contentsOf: chunk)
            return
        }
        let closed: Bool
        if controlBuffer.isEmpty {
            closed = try deliverControl(chunk, onEvent)
        } else {
            controlBuffer.append(contentsOf: chunk)
            closed = try controlBuffer.withUnsafeBytes { try deliverControl($0, onEvent) }
            // Split control frames are rare: give the memory back.
            controlBuffer = []
        }
        if closed { finish() }
    }

    /// Delivers a complete control frame; returns true for a close frame.
    private func deliverControl(_ payload: UnsafeRawBufferPointer, _ onEvent: (WebSocketEvent) throws -> Void) throws -> Bool {
        switch frameOpcode {
        case .ping:
            try onEvent(.ping(payload))
            return false
        case .pong:
            try onEvent(.pong(payload))
            return false
        default:
            // Close (RFC 6455 §5.5.1, §7.4): empty, or a valid code and a UTF-8 reason.
            if payload.count == 0 {
                try onEvent(.close(code: nil, reason: ""))
                return true
            }
            if payload.count == 1 { throw WebSocketProtocolError.framing("close frame with a 1-byte payload") }
            let code = WebSocketCloseCode(UInt16(payload[0]) << 8 | UInt16(payload[1]))
            if !code.isValidOnWire { throw WebSocketProtocolError.framing("invalid close code \(code.rawValue)") }
            let reason = UnsafeRawBufferPointer(rebasing: payload[2...])
            // 1007 rather than 1002: the frame is well formed, its text is not (RFC 6455 §8.1;
            // Autobahn 7.5.1 expects 1007).
            if !UTF8StreamValidator.isValid(reason) { throw WebSocketProtocolError.invalidPayload("close reason is not valid UTF-8") }
            try onEvent(.close(code: code, reason: String(decoding: reason, as: UTF8.self)))
            return true
        }
    }

    // MARK: - permessage-deflate

    /// Inflates a piece of a compressed message into `messageBuffer` and validates the new text.
    private mutating func inflate(_ compressed: UnsafeRawBufferPointer) throws {
        // After a BFINAL block the DEFLATE stream is over; RFC 7692 §7.2.3.4 shows a trailing
        // 0x00 after it, so whatever follows in the message is ignored rather than refused.
        guard compressed.count > 0, !inflateStreamEnded else { return }
        inflateSawInput = true
        let engine: ZlibInflater
        if let existing = inflater {
            engine = existing
        } else {
            do {
                engine = try ZlibInflater(windowBits: Int(inflateWindowBits))
            } catch {
                throw WebSocketProtocolError(closeCode: .internalError, reason: "cannot allocate inflate state")
            }
            inflater = engine
        }
        let before = messageBuffer.count
        let outcome: ZlibInflater.Outcome
        do {
            outcome = try engine.inflate(compressed, appendingTo: &messageBuffer, limit: maxMessageBytes)
        } catch {
            throw WebSocketProtocolError.invalidPayload("invalid compressed data")
        }
        // Validate the new text before judging the size: the verdict must not depend on how the
        // input was split, and a split input may well have shown the invalid byte before the
        // output crossed the limit. Only output within the limit counts.
        if messageOpcode == .text && messageBuffer.count > before {
            let end = min(messageBuffer.count, maxMessageBytes)
            var validator = utf8
            let ok = end <= before || messageBuffer.withUnsafeBytes { validator.feed(UnsafeRawBufferPointer(rebasing: $0[before..<end])) }
            utf8 = validator
            if !ok { throw WebSocketProtocolError.invalidPayload("invalid UTF-8 in text message") }
        }
        switch outcome {
        case .limitExceeded:
            throw WebSocketProtocolError.tooBig("decompressed message exceeds the \(maxMessageBytes)-byte limit")
        case .streamEnd:
            inflateStreamEnded = true
        case .consumed:
            break
        }
    }

    /// The empty stored block that senders strip from every compressed message (§7.2.2).
    private static let deflateTail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    private mutating func finishCompressedMessage(_ onEvent: (WebSocketEvent) throws -> Void) throws {
        if !inflateStreamEnded && inflateSawInput {
            try Self.deflateTail.withUnsafeBytes { try inflate($0) }
            // With the tail appended a well-formed message ends exactly on a block boundary;
            // anything else is a truncated block whose leftovers would corrupt the next message.
            if !inflateStreamEnded, let engine = inflater, !engine.isAtBlockBoundary {
                throw WebSocketProtocolError.invalidPayload("compressed message ends inside a DEFLATE block")
            }
        }
        let isText = messageOpcode == .text
        if isText && !utf8.isComplete {
            throw WebSocketProtocolError.invalidPayload("text message ends inside a UTF-8 sequence")
        }
        messageOpcode = nil
        try deliverBufferedMessage(isText: isText, onEvent)
        if inflaterPerMessage {
            inflater = nil                     // the next message starts from scratch: hold nothing
        } else if inflateStreamEnded {
            inflater?.reset()                  // BFINAL ended the stream; the next one is new
        }
        inflateStreamEnded = false
    }

    /// Ends the reader's life: frees everything it holds; input is ignored from now on.
    private mutating func finish() {
        stage = .finished
        messageOpcode = nil
        messageBuffer = []
        controlBuffer = []
        inflater = nil
    }
}
