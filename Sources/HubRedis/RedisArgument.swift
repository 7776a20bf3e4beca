/// One argument of a Redis command: text or raw bytes, sent binary-safe (with an explicit
/// length, so NUL and invalid UTF-8 go through untouched).
///
/// Text is kept as a `String` until the command is written: Swift stores strings of up to 15
/// UTF-8 bytes inline, so the common `SET key value` costs no allocation per argument.
public struct RedisArgument: Sendable, Hashable {
    @usableFromInline
    enum Storage: Sendable, Hashable {
        case text(String)
        case bytes([UInt8])
    }

    @usableFromInline
    let storage: Storage

    /// UTF-8 text.
    @inlinable
    public init(_ text: String) { storage = .text(text) }

    /// Raw bytes.
    @inlinable
    public init(bytes: [UInt8]) { storage = .bytes(bytes) }

    /// A decimal integer, as Redis expects counts, TTLs and scores.
    @inlinable
    public init(_ value: Int) { storage = .text(String(value)) }

    /// The number of bytes on the wire.
    public var count: Int {
        switch storage {
        case .text(let s): return s.utf8.count
        case .bytes(let b): return b.count
        }
    }

    /// The argument's bytes (a copy for text).
    public var bytes: [UInt8] {
        switch storage {
        case .text(let s): return Array(s.utf8)
        case .bytes(let b): return b
        }
    }

    /// Copies the bytes to `destination`, which has room for `count` of them.
    func copyBytes(to destination: UnsafeMutableRawPointer) {
        switch storage {
        case .text(let s):
            // Native Swift strings are contiguous UTF-8: one memcpy.
            let copied: Void? = s.utf8.withContiguousStorageIfAvailable { utf8 in
                if let base = utf8.baseAddress { destination.copyMemory(from: base, byteCount: utf8.count) }
            }
            if copied == nil {
                var offset = 0
                for byte in s.utf8 {
                    destination.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
                    offset += 1
                }
            }
        case .bytes(let b):
            b.withUnsafeBytes { raw in
                if let base = raw.baseAddress { destination.copyMemory(from: base, byteCount: raw.count) }
            }
        }
    }

    /// True when the argument equals `upper` ignoring ASCII case (`upper` must be upper-case
    /// ASCII). Used to spot command names without allocating.
    func equalsIgnoringCase(_ upper: StaticString) -> Bool {
        let n = upper.utf8CodeUnitCount
        guard count == n else { return false }
        return upper.withUTF8Buffer { want in
            var i = 0
            func matches(_ byte: UInt8) -> Bool {
                let folded = (byte >= 0x61 && byte <= 0x7a) ? byte - 0x20 : byte
                defer { i += 1 }
                return folded == want[i]
            }
            switch storage {
            case .text(let s): return s.utf8.allSatisfy(matches)
            case .bytes(let b): return b.allSatisfy(matches)
            }
        }
    }
}

extension RedisArgument: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
}

extension RedisArgument: CustomStringConvertible {
    public var description: String {
        switch storage {
        case .text(let s): return s
        case .bytes(let b): return RedisValue.escape(b)
        }
    }
}

/// Scratch memory that encodes a command in RESP (`*N\r\n$len\r\narg\r\n...`) for
/// `redisAsyncFormattedCommand`.
///
/// Encoding here rather than through `redisAsyncCommandArgv` saves hiredis's `sdscatfmt`
/// formatting, which allocates and grows a fresh string per command (about 10% of the client's
/// CPU in a pipelined SET/GET profile). The buffer is reused for every command of a connection;
/// only a command larger than `retainLimit` gets memory of its own, freed at once.
final class RESPCommandBuffer {
    private var bytes: UnsafeMutableRawPointer
    private var capacity: Int
    private let retainLimit = 64 * 1024

    init() {
        capacity = 4096
        bytes = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { bytes.deallocate() }

    /// Encodes `args` and calls `body(command, length)`; the pointer is valid only inside.
    ///
    /// The command is followed by a NUL byte (not counted in `length`), as hiredis's own
    /// formatter leaves it: `__redisAsyncCommand` scans the command with `strchr` to find the
    /// arguments of `SUBSCRIBE` and friends, and in a reused buffer it would otherwise run on
    /// into an earlier, longer command's bytes (hiredis then asserts, or registers garbage).
    func withEncoded<R>(_ args: [RedisArgument], _ body: (UnsafePointer<CChar>, Int) -> R) -> R {
        // Upper bound: per argument `$`, up to 20 digits, two CRLFs; the `*N` header; the NUL.
        var bound = 25
        for arg in args { bound += arg.count + 25 }
        var target = bytes
        var oversized: UnsafeMutableRawPointer?
        if bound > capacity {
            if bound > retainLimit {
                oversized = .allocate(byteCount: bound, alignment: 16)
                target = oversized!
            } else {
                bytes.deallocate()
                capacity = max(bound, capacity * 2)
                bytes = .allocate(byteCount: capacity, alignment: 16)
                target = bytes
            }
        }
        defer { oversized?.deallocate() }
        var offset = Self.header(UInt8(ascii: "*"), args.count, at: target)
        for arg in args {
            let n = arg.count
            offset += Self.header(UInt8(ascii: "$"), n, at: target + offset)
            arg.copyBytes(to: target + offset)
            offset += n
            target.storeBytes(of: 0x0a0d as UInt16, toByteOffset: offset, as: UInt16.self)  // "\r\n"
            offset += 2
        }
        target.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
        return body(UnsafePointer(target.assumingMemoryBound(to: CChar.self)), offset)
    }

    /// Writes `sigil`, `value` in decimal and CRLF at `p`; returns the bytes written.
    @inline(__always)
    static func header(_ sigil: UInt8, _ value: Int, at p: UnsafeMutableRawPointer) -> Int {
        p.storeBytes(of: sigil, as: UInt8.self)
        var digits = 1
        var v = value
        while v >= 10 { v /= 10; digits += 1 }
        v = value
        var i = digits
        while i > 0 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v % 10), toByteOffset: i, as: UInt8.self)
            v /= 10
            i -= 1
        }
        p.storeBytes(of: 0x0a0d as UInt16, toByteOffset: digits + 1, as: UInt16.self)
        return digits + 3
    }
}
