// Helpers shared by the HubWebSocket tests: building frames by hand (including invalid ones),
// feeding a reader in chosen pieces, and recording what it produced in a comparable form.

import XCTest
@testable import HubWebSocket

/// A reader event copied out of its transient buffer, or the error that ended the input.
enum Recorded: Equatable, CustomStringConvertible {
    case text([UInt8])
    case binary([UInt8])
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16?, String)
    case failed(UInt16)

    init(_ event: WebSocketEvent) {
        switch event {
        case .text(let p): self = .text(Array(p))
        case .binary(let p): self = .binary(Array(p))
        case .ping(let p): self = .ping(Array(p))
        case .pong(let p): self = .pong(Array(p))
        case .close(let code, let reason): self = .close(code?.rawValue, reason)
        }
    }

    static func text(_ s: String) -> Recorded { .text(Array(s.utf8)) }

    var description: String {
        switch self {
        case .text(let b): return "text(\(b.count): \(String(decoding: b.prefix(40), as: UTF8.self)))"
        case .binary(let b): return "binary(\(b.count))"
        case .ping(let b): return "ping(\(b.count))"
        case .pong(let b): return "pong(\(b.count))"
        case .close(let c, let r): return "close(\(c.map(String.init) ?? "nil"), \(r))"
        case .failed(let c): return "failed(\(c))"
        }
    }
}

/// Deterministic PRNG (SplitMix64) so random split tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Builds one frame by hand. Unlike the encoder it can produce anything: reserved bits,
/// bad opcodes, non-minimal lengths, oversized control frames.
func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false, rsv2: Bool = false, rsv3: Bool = false,
           mask: UInt32? = 0x3D21_FA37, lengthForm: Int? = nil) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | opcode]
    let maskBit: UInt8 = mask == nil ? 0 : 0x80
    let form = lengthForm ?? (payload.count <= 125 ? 7 : (payload.count <= 0xFFFF ? 16 : 64))
    switch form {
    case 7: out.append(maskBit | UInt8(payload.count))
    case 16:
        out.append(maskBit | 126)
        out.append(UInt8(payload.count >> 8))
        out.append(UInt8(payload.count & 0xFF))
    default:
        out.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: UInt64(payload.count) >> UInt64(shift))) }
    }
    if let key = mask {
        let k = [UInt8(key & 0xFF), UInt8(key >> 8 & 0xFF), UInt8(key >> 16 & 0xFF), UInt8(key >> 24)]
        out += k
        out += payload.enumerated().map { $0.element ^ k[$0.offset % 4] }
    } else {
        out += payload
    }
    return out
}

func bytes(_ hex: String) -> [UInt8] {
    let digits = hex.filter { $0.isHexDigit }
    var out: [UInt8] = []
    var i = digits.startIndex
    while i < digits.endIndex {
        let j = digits.index(i, offsetBy: 2)
        out.append(UInt8(digits[i..<j], radix: 16)!)
        i = j
    }
    return out
}

func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

/// Feeds `input` to a fresh reader in the given pieces (each copied into its own mutable
/// buffer, as a socket read would be) and records the events, ending with `.failed` on error.
func parse(_ input: [UInt8], pieces: [Int]? = nil, role: WebSocketRole = .server, limits: WebSocketLimits = WebSocketLimits(),
         deflate: PerMessageDeflate.Parameters? = nil) -> [Recorded] {
    var reader = WebSocketReader(role: role, limits: limits, deflate: deflate)
    return feed(&reader, input, pieces: pieces)
}

func feed(_ reader: inout WebSocketReader, _ input: [UInt8], pieces: [Int]? = nil) -> [Recorded] {
    var events: [Recorded] = []
    var sizes = pieces ?? [input.count]
    let covered = sizes.reduce(0, +)
    if covered < input.count { sizes.append(input.count - covered) }
    var offset = 0
    for size in sizes {
        let end = min(input.count, offset + size)
        var chunk = Array(input[offset..<end])
        offset = end
        if chunk.isEmpty { continue }
        do {
            try chunk.withUnsafeMutableBytes { buffer in
                try reader.read(buffer) { events.append(Recorded($0)) }
            }
        } catch let error as WebSocketProtocolError {
            events.append(.failed(error.closeCode.rawValue))
            return events
        } catch {
            XCTFail("unexpected error \(error)")
            return events
        }
    }
    return events
}

/// Piece sizes that split `count` bytes at `point` (two pieces).
func splitAt(_ point: Int, of count: Int) -> [Int] { [point, count - point] }

/// Random piece sizes covering `count` bytes.
func randomPieces(_ count: Int, using rng: inout SplitMix64, maxPiece: Int = 16) -> [Int] {
    var pieces: [Int] = []
    var left = count
    while left > 0 {
        let n = Int.random(in: 1...max(1, min(maxPiece, left)), using: &rng)
        pieces.append(n)
        left -= n
    }
    return pieces
}

/// Asserts that feeding `input` whole, byte by byte, at every split point and at random
/// splits always yields `expected`.
func assertSplitInvariant(_ input: [UInt8], expected: [Recorded], role: WebSocketRole = .server,
                          limits: WebSocketLimits = WebSocketLimits(), deflate: PerMessageDeflate.Parameters? = nil,
                          everySplit: Bool = true, randomRuns: Int = 50, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(parse(input, role: role, limits: limits, deflate: deflate), expected, "whole", file: file, line: line)
    XCTAssertEqual(parse(input, pieces: Array(repeating: 1, count: input.count), role: role, limits: limits, deflate: deflate),
                   expected, "byte by byte", file: file, line: line)
    if everySplit {
        for point in 0...input.count {
            let got = parse(input, pieces: splitAt(point, of: input.count), role: role, limits: limits, deflate: deflate)
            if got != expected {
                XCTFail("split at \(point): \(got) != \(expected)", file: file, line: line)
                return
            }
        }
    }
    var rng = SplitMix64(seed: UInt64(input.count) &* 7919)
    for run_ in 0..<randomRuns {
        let pieces = randomPieces(input.count, using: &rng, maxPiece: max(2, input.count / 3))
        let got = parse(input, pieces: pieces, role: role, limits: limits, deflate: deflate)
        if got != expected {
            XCTFail("random run \(run_) pieces \(pieces): \(got) != \(expected)", file: file, line: line)
            return
        }
    }
}
