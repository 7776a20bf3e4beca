// Incremental UTF-8 validation (RFC 3629), for text messages whose bytes arrive in pieces.
//
// RFC 6455 §8.1 requires failing the connection on invalid UTF-8 in a text message, and
// Autobahn's 6.4.x cases check that a server does so "fast": as soon as the offending byte
// has arrived, even in the middle of a frame whose rest is still in flight. So the reader
// feeds every piece of text payload here as it arrives, and this validator must (1) keep its
// state across pieces, so a sequence cut at any boundary is fine, and (2) reject at the first
// byte that no valid continuation could follow — not at the end of the sequence.
//
// The automaton works on byte classes. The second byte of a multi-byte sequence is the one
// that rules out overlong forms (E0 80–9F, F0 80–8F), surrogates (ED A0–BF) and code points
// above U+10FFFF (F4 90–BF); C0, C1 and F5–FF can never start a sequence. Those are exactly
// the special states below, so every invalid sequence is rejected at the earliest byte.

/// Byte classes: 0 ASCII, 1 80–8F, 2 90–9F, 3 A0–BF, 4 never valid (C0 C1 F5–FF),
/// 5 C2–DF, 6 E0, 7 E1–EC EE EF, 8 ED, 9 F0, 10 F1–F3, 11 F4.
private let utf8ByteClass: [UInt8] = (0...255).map { (b: Int) -> UInt8 in
    switch b {
    case 0x00...0x7F: return 0
    case 0x80...0x8F: return 1
    case 0x90...0x9F: return 2
    case 0xA0...0xBF: return 3
    case 0xC2...0xDF: return 5
    case 0xE0: return 6
    case 0xED: return 8
    case 0xE1...0xEF: return 7
    case 0xF0: return 9
    case 0xF1...0xF3: return 10
    case 0xF4: return 11
    default: return 4   // C0, C1, F5–FF
    }
}

private let classCount = 12

/// States: 0 accept, 1 reject (sticky), 2 need 1 more (80–BF), 3 need 2 more, 4 need 3 more,
/// 5 after E0 (next A0–BF), 6 after ED (next 80–9F), 7 after F0 (next 90–BF),
/// 8 after F4 (next 80–8F). Flattened as state * 12 + class.
private let utf8Transitions: [UInt8] = {
    let r: UInt8 = 1
    var t = [UInt8](repeating: r, count: 9 * classCount)
    func set(_ state: Int, _ classes: [Int], _ next: UInt8) { for c in classes { t[state * classCount + c] = next } }
    set(0, [0], 0)
    set(0, [5], 2)
    set(0, [6], 5)
    set(0, [7], 3)
    set(0, [8], 6)
    set(0, [9], 7)
    set(0, [10], 4)
    set(0, [11], 8)
    set(2, [1, 2, 3], 0)
    set(3, [1, 2, 3], 2)
    set(4, [1, 2, 3], 3)
    set(5, [3], 2)
    set(6, [1, 2], 2)
    set(7, [2, 3], 3)
    set(8, [1], 3)
    return t
}()

/// Validates UTF-8 incrementally: feed the bytes of one text message in any number of pieces;
/// `feed` returns false at the first piece that contains a byte no valid text could continue
/// with, and `isComplete` tells at the end whether the text stopped on a character boundary.
/// One byte of state, so it lives inline in the reader.
public struct UTF8StreamValidator: Sendable, Equatable {
    private var state: UInt8 = 0

    public init() {}

    /// True when every byte fed so far forms complete, valid characters.
    @inlinable public var isComplete: Bool { stateValue == 0 }
    /// True once an invalid byte has been seen; stays true until `reset()`.
    @inlinable public var hasFailed: Bool { stateValue == 1 }

    @usableFromInline var stateValue: UInt8 { state }

    public mutating func reset() { state = 0 }

    /// Feeds the next piece; returns false if the text is invalid (now or already before).
    @discardableResult
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let start = bytes.baseAddress, bytes.count > 0 else { return state != 1 }
        if state == 1 { return false }
        var s = state
        var p = start
        let end = start + bytes.count
        utf8ByteClass.withUnsafeBufferPointer { classes in
            utf8Transitions.withUnsafeBufferPointer { transitions in
                while p < end {
                    if s == 0 {
                        // Between characters: skip ASCII eight bytes at a time, the common case
                        // for JSON. (loadUnaligned: the payload has no alignment.)
                        while end - p >= 8 {
                            let word = p.loadUnaligned(as: UInt64.self)
                            if word & 0x8080_8080_8080_8080 != 0 { break }
                            p += 8
                        }
                        if p == end { break }
                    }
                    let byte = p.load(as: UInt8.self)
                    s = transitions[Int(s) &* classCount &+ Int(classes[Int(byte)])]
                    if s == 1 { break }
                    p += 1
                }
            }
        }
        state = s
        return s != 1
    }

    /// Validates a complete byte sequence (e.g. a close reason) in one go.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8StreamValidator()
        return validator.feed(bytes) && validator.isComplete
    }
}
