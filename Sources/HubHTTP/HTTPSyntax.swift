// Byte-level grammar of RFC 9110/9112 shared by the parser, the router and the header helpers.
//
// Everything here works on raw bytes (UInt8) so that the parser can validate input without
// building Strings first; Strings are created only once a field is known to be valid.

/// ASCII code points the codec refers to by name.
@usableFromInline
enum ASCII {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let comma: UInt8 = 0x2C
    static let slash: UInt8 = 0x2F
    static let question: UInt8 = 0x3F
    static let asterisk: UInt8 = 0x2A
    static let del: UInt8 = 0x7F
    static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39
}

/// Character classes of RFC 9110 §5.6, as branch-light predicates.
enum HTTPSyntax {
    // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
    //       / DIGIT / ALPHA
    // Two 64-bit masks (bytes 0–63 and 64–127) instead of a 256-entry table: a global Array
    // would cost a lazy-initialisation check and a bounds check per byte in the hot loop,
    // while these constants fold into the instruction stream. A test recomputes them from
    // the RFC's list so they cannot silently drift.
    static let tcharLow: UInt64 = 0x03FF_6CFA_0000_0000
    static let tcharHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    @inline(__always)
    static func isTchar(_ b: UInt8) -> Bool {
        if b < 64 { return (tcharLow >> UInt64(b)) & 1 == 1 }
        if b < 128 { return (tcharHigh >> UInt64(b &- 64)) & 1 == 1 }
        return false
    }

    /// Field values may contain VCHAR, obs-text (0x80–0xFF), SP and HTAB; every other control
    /// byte (including NUL and DEL) is forbidden (RFC 9110 §5.5). CR and LF are handled by the
    /// line splitter before a value is ever looked at.
    @inline(__always)
    static func isForbiddenInValue(_ b: UInt8) -> Bool {
        (b < 0x20 && b != ASCII.tab) || b == ASCII.del
    }

    @inline(__always)
    static func isOWS(_ b: UInt8) -> Bool { b == ASCII.space || b == ASCII.tab }

    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool { b &- ASCII.zero < 10 }

    /// Value of a hex digit, or nil. Used for chunk sizes only, so no table is needed.
    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt64? {
        switch b {
        case 0x30...0x39: return UInt64(b &- 0x30)
        case 0x41...0x46: return UInt64(b &- 0x41 &+ 10)
        case 0x61...0x66: return UInt64(b &- 0x61 &+ 10)
        default: return nil
        }
    }

    @inline(__always)
    static func lowercased(_ b: UInt8) -> UInt8 {
        // Only A–Z change; every other byte (including obs-text) is left alone.
        (b &- 0x41) < 26 ? b | 0x20 : b
    }

    /// Index of the first LF in `buf[from..<to]`, or nil.
    ///
    /// Scans eight bytes per step (SWAR "has zero byte" trick on `word ^ 0x0A0A…`), because
    /// finding line ends is the single most frequent operation on a request head; the tail is
    /// scanned bytewise. Unaligned loads are fine on every platform Swift supports.
    static func firstLF(in buf: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let base = buf.baseAddress else { return nil }
        var i = from
        let raw = UnsafeRawPointer(base)
        let lfs: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while i &+ 8 <= to {
            let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ lfs
            if (word &- ones) & ~word & highs != 0 { break }   // some byte in this word is LF
            i &+= 8
        }
        while i < to {
            if base[i] == ASCII.lf { return i }
            i &+= 1
        }
        return nil
    }

    /// Index of the first byte in `buf[from..<to]` that a field value may not contain (see
    /// `isForbiddenInValue`), or nil.
    ///
    /// Eight bytes per step: "has a byte < 0x20" and "has a 0x7F byte" are both exact SWAR
    /// tests, so clean words (the vast majority: tokens, cookies, user agents) cost three ALU
    /// operations each. A word that trips a test is rescanned bytewise, which also lets HTAB
    /// (allowed, but < 0x20) through.
    static func firstForbiddenValueByte(in buf: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let base = buf.baseAddress else { return nil }
        var i = from
        let raw = UnsafeRawPointer(base)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while i &+ 8 <= to {
            let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let belowSpace = (word &- 0x2020_2020_2020_2020) & ~word & highs
            let delXor = word ^ 0x7F7F_7F7F_7F7F_7F7F
            let hasDel = (delXor &- ones) & ~delXor & highs
            if belowSpace | hasDel != 0 {
                for j in i..<(i &+ 8) where isForbiddenInValue(base[j]) { return j }
            }
            i &+= 8
        }
        while i < to {
            if isForbiddenInValue(base[i]) { return i }
            i &+= 1
        }
        return nil
    }

    /// ASCII case-insensitive comparison of `buf[start..<end]` with a lowercase literal.
    /// Header names are compared this way without building a String.
    @inline(__always)
    static func equalsLowercase(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
                                _ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard end &- start == n else { return false }
        let lit = literal.utf8Start
        var i = 0
        while i < n {
            if lowercased(buf[start &+ i]) != lit[i] { return false }
            i &+= 1
        }
        return true
    }

    /// Calls `body` with the bounds of each OWS-trimmed, non-empty element of a comma-separated
    /// list (RFC 9110 §5.6.1 `#element`), stopping early when `body` returns false.
    /// Empty elements ("a,,b") are skipped, as the RFC asks recipients to do.
    @inline(__always)
    static func forEachListElement(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
                                   _ body: (Int, Int) -> Bool) {
        var i = start
        while i < end {
            var elementEnd = i
            while elementEnd < end && buf[elementEnd] != ASCII.comma { elementEnd &+= 1 }
            var s = i, e = elementEnd
            while s < e && isOWS(buf[s]) { s &+= 1 }
            while e > s && isOWS(buf[e &- 1]) { e &-= 1 }
            if s < e && !body(s, e) { return }
            i = elementEnd &+ 1
        }
    }

    /// Builds a String from validated bytes: one allocation at most (none for ≤15 bytes).
    @inline(__always)
    static func string(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: buf[start..<end]), as: UTF8.self)
    }

    /// Token-list membership on Strings (used by `HTTPHeaders.containsToken` and the encoder).
    static func listContainsToken(_ value: String, _ token: String) -> Bool {
        var value = value
        var token = token
        return value.withUTF8 { v in
            token.withUTF8 { t in
                var found = false
                forEachListElement(v, 0, v.count) { s, e in
                    guard e &- s == t.count else { return true }
                    var i = 0
                    while i < t.count {
                        if lowercased(v[s &+ i]) != lowercased(t[i]) { return true }
                        i &+= 1
                    }
                    found = true
                    return false
                }
                return found
            }
        }
    }

    /// ASCII case-insensitive String equality (header names are ASCII tokens).
    static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        var i = x.startIndex, j = y.startIndex
        while i != x.endIndex {
            if lowercased(x[i]) != lowercased(y[j]) { return false }
            i = x.index(after: i)
            j = y.index(after: j)
        }
        return true
    }
}
