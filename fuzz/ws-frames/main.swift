// libFuzzer target for the HubWebSocket frame reader, in both roles.
//
// Built by fuzz/run-ws-frames.sh together with Sources/HubWebSocket/*.swift into one module (so
// internals are in scope without @testable), linked with the CHubShims object, zlib and libcrypto.
// Input: byte 0 picks the configuration, byte 1 seeds the split points, the rest is the byte
// stream a peer sent. Beyond "does not crash", each property below traps when violated, which
// libFuzzer records as a crash:
//   1. split invariance: the whole stream, and the same stream cut into pieces at positions
//      derived from byte 1, give identical events and the identical error (with permessage-
//      deflate, for 15-bit windows only: see fuzz/ws-inflate/main.swift for why);
//   2. delivered events respect the protocol: text is valid UTF-8 (checked by the standard
//      library, an independent validator), control payloads ≤ 125 bytes, messages ≤ the limit;
//   3. errors carry a close code the reader is documented to use (1002, 1007, 1009, 1011), and
//      nothing is delivered after an error or a close event.

/// One event copied out of its transient buffer.
private enum Seen: Equatable {
    case text([UInt8]), binary([UInt8]), ping([UInt8]), pong([UInt8]), close(UInt16?, String), failed(UInt16)
}

private struct Configuration {
    var role: WebSocketRole
    var limits: WebSocketLimits
    var deflate: PerMessageDeflate.Parameters?
    /// Whether the result must not depend on the split (see the file comment).
    var splitInvariant: Bool { deflate.map { $0.serverMaxWindowBits == 15 && $0.clientMaxWindowBits == 15 } ?? true }

    init(_ selector: UInt8) {
        role = selector & 1 == 0 ? .server : .client
        // Small limits half the time so short inputs reach the 1009 paths.
        limits = selector & 2 == 0 ? WebSocketLimits(maxFrameBytes: 200, maxMessageBytes: 300) : WebSocketLimits()
        switch selector >> 2 & 3 {
        case 0: deflate = nil
        case 1: deflate = PerMessageDeflate.Parameters()
        case 2: deflate = PerMessageDeflate.Parameters(serverNoContextTakeover: true, clientNoContextTakeover: true)
        default:
            let bits = 8 + Int(selector >> 4 & 7)
            deflate = PerMessageDeflate.Parameters(serverMaxWindowBits: bits, clientMaxWindowBits: bits)
        }
    }
}

/// Feeds `stream` in pieces of the given sizes (the last piece takes the rest) and records.
private func run(_ stream: UnsafeRawBufferPointer, pieces: [Int], configuration c: Configuration) -> [Seen] {
    var reader = WebSocketReader(role: c.role, limits: c.limits, deflate: c.deflate)
    var seen: [Seen] = []
    var offset = 0
    var sizes = pieces
    sizes.append(stream.count)
    for size in sizes where offset < stream.count {
        let end = min(stream.count, offset + size)
        // A fresh mutable copy per piece, as a socket read into the loop's buffer would be.
        var chunk = Array(stream[offset..<end])
        offset = end
        let wasFinished = reader.isFinished
        do {
            try chunk.withUnsafeMutableBytes { buffer in
                try reader.read(buffer) { event in
                    if wasFinished { fatalError("event after the reader finished") }
                    switch event {
                    case .text(let p):
                        if String(validating: p, as: UTF8.self) == nil { fatalError("invalid UTF-8 delivered as text") }
                        if p.count > c.limits.maxMessageBytes { fatalError("text over the message limit") }
                        seen.append(.text(Array(p)))
                    case .binary(let p):
                        if p.count > c.limits.maxMessageBytes { fatalError("binary over the message limit") }
                        seen.append(.binary(Array(p)))
                    case .ping(let p):
                        if p.count > 125 { fatalError("ping over 125 bytes") }
                        seen.append(.ping(Array(p)))
                    case .pong(let p):
                        if p.count > 125 { fatalError("pong over 125 bytes") }
                        seen.append(.pong(Array(p)))
                    case .close(let code, let reason):
                        if let code, !code.isValidOnWire { fatalError("invalid close code delivered") }
                        if reason.utf8.count > 123 { fatalError("close reason over 123 bytes") }
                        seen.append(.close(code?.rawValue, reason))
                    }
                }
            }
        } catch let error as WebSocketProtocolError {
            if ![1002, 1007, 1009, 1011].contains(error.closeCode.rawValue) { fatalError("unexpected close code \(error)") }
            if wasFinished { fatalError("error after the reader finished") }
            seen.append(.failed(error.closeCode.rawValue))
        } catch {
            fatalError("unexpected error type \(error)")
        }
        if case .close = seen.last, !reader.isFinished { fatalError("close event but reader not finished") }
        if case .failed = seen.last, !reader.isFinished { fatalError("error but reader not finished") }
    }
    return seen
}

/// Events in a line, for the message of a failed property.
private func summary(_ events: [Seen]) -> String {
    events.map { event -> String in
        switch event {
        case .failed(let code): return "failed(\(code))"
        default:
            let text = "\(event)"
            return text.count > 80 ? String(text.prefix(80)) + "…" : text
        }
    }.joined(separator: ", ")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let configuration = Configuration(data[0])
    let stream = UnsafeRawBufferPointer(start: data + 2, count: size - 2)
    let whole = run(stream, pieces: [stream.count], configuration: configuration)
    // Pieces of 1…16 bytes from a small generator seeded by byte 1 (plus one-byte pieces when
    // the seed is 0), so header, payload and mask-phase boundaries all get cut.
    var state = UInt32(data[1]) &* 2_654_435_761 &+ 1
    var pieces: [Int] = []
    var covered = 0
    while covered < stream.count {
        state = state &* 1_103_515_245 &+ 12345
        let piece = data[1] == 0 ? 1 : Int(state >> 16 & 15) + 1
        pieces.append(piece)
        covered += piece
    }
    let split = run(stream, pieces: pieces, configuration: configuration)
    if configuration.splitInvariant && whole != split { fatalError("split changed the result:\n  whole:    \(summary(whole))\n  in parts: \(summary(split))") }
    return 0
}
