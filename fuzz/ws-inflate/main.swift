// libFuzzer target for the permessage-deflate receive path: arbitrary bytes as the compressed
// payloads of RSV1 messages, inflated with bounded output, plus a compress → inflate round trip.
//
// Built by fuzz/run-ws-inflate.sh like ws-frames (HubWebSocket sources + this file, one module).
// Input: byte 0 picks window bits, context takeover and text/binary; byte 1 the message limit and
// how messages are fragmented; the rest is a list of records, each a 2-byte big-endian length and
// that many bytes. Properties (a violation traps, which libFuzzer records as a crash):
//   1. arbitrary compressed data never makes the reader deliver more than maxMessageBytes, never
//      delivers invalid UTF-8 as text, and fails only with 1007 or 1009 (or 1002 for framing);
//      a deflate bomb is cut at the limit (ASan/RSS limits catch an unbounded buffer);
//   2. split invariance: the frames fed whole and in small pieces give the same result — with
//      15 window bits only. Below 15, zlib checks a back-reference against its window plus the
//      output of the current inflate() call, so a stream that reaches further back than the
//      agreed window (invalid: a compliant peer never does) may pass when it arrives in one
//      read and fail with 1007 when split. Harmless (zlib reads only its own memory) but not
//      split-invariant, so smaller windows are checked for properties 1 and 3 only;
//   3. round trip: each record's bytes, compressed by our writer (client role, the same
//      parameters, context carried across messages when negotiated) and read back by a
//      server reader, come back identical (or fail with 1009 exactly when over the limit).

private enum Seen: Equatable {
    case text([UInt8]), binary([UInt8]), ping([UInt8]), failed(UInt16)
}

private func read(_ stream: [UInt8], pieceSize: Int, deflate: PerMessageDeflate.Parameters, limits: WebSocketLimits) -> [Seen] {
    var reader = WebSocketReader(role: .server, limits: limits, deflate: deflate)
    var seen: [Seen] = []
    var offset = 0
    while offset < stream.count {
        let end = min(stream.count, offset + pieceSize)
        var chunk = Array(stream[offset..<end])
        offset = end
        do {
            try chunk.withUnsafeMutableBytes { buffer in
                try reader.read(buffer) { event in
                    switch event {
                    case .text(let p):
                        if String(validating: p, as: UTF8.self) == nil { fatalError("invalid UTF-8 delivered as text") }
                        if p.count > limits.maxMessageBytes { fatalError("text over the limit: \(p.count)") }
                        seen.append(.text(Array(p)))
                    case .binary(let p):
                        if p.count > limits.maxMessageBytes { fatalError("binary over the limit: \(p.count)") }
                        seen.append(.binary(Array(p)))
                    case .ping(let p):
                        seen.append(.ping(Array(p)))
                    case .pong, .close:
                        fatalError("no pong or close was sent")
                    }
                }
            }
        } catch let error as WebSocketProtocolError {
            if ![1002, 1007, 1009].contains(error.closeCode.rawValue) { fatalError("unexpected close code \(error)") }
            seen.append(.failed(error.closeCode.rawValue))
            return seen
        } catch {
            fatalError("unexpected error type \(error)")
        }
    }
    return seen
}

/// Masked client frames carrying `payload` as one compressed message in `fragments` frames,
/// with a ping between the first two.
private func frames(_ payload: ArraySlice<UInt8>, text: Bool, fragments: Int, into out: inout [UInt8]) {
    let count = max(1, fragments)
    let step = max(1, (payload.count + count - 1) / count)
    var start = payload.startIndex
    var index = 0
    repeat {
        let end = min(payload.endIndex, start + step)
        let last = end == payload.endIndex
        let opcode: WebSocketOpcode = index == 0 ? (text ? .text : .binary) : .continuation
        Array(payload[start..<end]).withUnsafeBytes {
            WebSocketFrameEncoder.encode(opcode, payload: $0, fin: last, rsv1: index == 0, maskingKey: 0xA5C3_1F07, into: &out)
        }
        if index == 0 && !last {
            [UInt8]([1, 2]).withUnsafeBytes { WebSocketFrameEncoder.encode(.ping, payload: $0, maskingKey: 0x0102_0304, into: &out) }
        }
        start = end
        index += 1
    } while start < payload.endIndex
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
    let selector = data[0], shape = data[1]
    // Window bits 8…15, with 15 twice as likely (selector & 7 == 0 or 7): it is the common case
    // and the one with the split-invariance check.
    let bits = selector & 7 == 0 ? 15 : 8 + Int(selector & 7)
    let noTakeover = selector & 8 != 0
    let text = selector & 16 != 0
    let deflate = PerMessageDeflate.Parameters(serverNoContextTakeover: noTakeover, clientNoContextTakeover: noTakeover,
                                               serverMaxWindowBits: bits, clientMaxWindowBits: bits)
    let limits = WebSocketLimits(maxFrameBytes: 1 << 20, maxMessageBytes: [64, 4096, 65536, 1 << 20][Int(shape & 3)])
    let fragments = Int(shape >> 2 & 3) + 1

    // Records: 2-byte length, then bytes.
    let input = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    var records: [ArraySlice<UInt8>] = []
    var i = 0
    while i + 2 <= input.count {
        let n = Int(input[i]) << 8 | Int(input[i + 1])
        let end = min(input.count, i + 2 + n)
        records.append(input[(i + 2)..<end])
        i = end
    }
    if records.isEmpty { return 0 }

    // 1 + 2: arbitrary bytes as compressed payloads.
    var stream: [UInt8] = []
    for record in records { frames(record, text: text, fragments: fragments, into: &stream) }
    let whole = read(stream, pieceSize: stream.count, deflate: deflate, limits: limits)
    let bytewise = read(stream, pieceSize: 1 + Int(shape >> 4), deflate: deflate, limits: limits)
    if bits == 15 && whole != bytewise { fatalError("split changed the result:\n  whole:    \(summary(whole))\n  in parts: \(summary(bytewise))") }

    // 3: round trip through our own compressor.
    var writer = WebSocketWriter(role: .client, deflate: deflate, compressionThreshold: 0)
    var wire: [UInt8] = []
    var expected: [Seen] = []
    for record in records {
        let payload = Array(record)
        let isText = text && String(validating: payload, as: UTF8.self) != nil
        payload.withUnsafeBytes { writer.writeMessage(isText ? .text : .binary, payload: $0, into: &wire) }
        if payload.count > limits.maxMessageBytes {
            expected.append(.failed(1009))
            break
        }
        expected.append(isText ? .text(payload) : .binary(payload))
    }
    let roundTrip = read(wire, pieceSize: 7 + Int(shape), deflate: deflate, limits: limits)
    if roundTrip != expected { fatalError("round trip mismatch:\n  got:      \(summary(roundTrip))\n  expected: \(summary(expected))") }
    return 0
}
