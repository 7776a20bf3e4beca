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

/// Scratch memory that lays a command's arguments out for a C `argc`/`argv`/`argvlen` call:
/// the bytes of every argument back to back in one buffer, pointers and lengths beside them.
///
/// One per connection, reused for every command, so sending costs no allocation of ours once it
/// has grown; arrays were measurably slower here (uniqueness checks and generic appends on
/// every argument of every command). Commands larger than `retainLimit` use a buffer of their
/// own for that call only, so one 1 MiB `SET` does not pin 1 MiB per connection forever.
final class ArgvBuffer {
    private var bytes: UnsafeMutableRawPointer
    private var byteCapacity: Int
    private var pointers: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private var lengths: UnsafeMutablePointer<Int>
    private var slotCapacity: Int
    private let retainLimit = 64 * 1024

    init() {
        byteCapacity = 4096
        bytes = .allocate(byteCount: byteCapacity, alignment: 16)
        slotCapacity = 16
        pointers = .allocate(capacity: slotCapacity)
        lengths = .allocate(capacity: slotCapacity)
    }

    deinit {
        bytes.deallocate()
        pointers.deallocate()
        lengths.deallocate()
    }

    /// Lays `args` out and calls `body(argc, argv, argvlen)`; the pointers are valid only inside.
    func withArgv<R>(_ args: [RedisArgument], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        let n = args.count
        if n > slotCapacity {
            pointers.deallocate()
            lengths.deallocate()
            slotCapacity = max(n, slotCapacity * 2)
            pointers = .allocate(capacity: slotCapacity)
            lengths = .allocate(capacity: slotCapacity)
        }
        var total = 0
        for i in 0..<n {
            let count = args[i].count
            lengths[i] = count
            total += count
        }
        var target = bytes
        var oversized: UnsafeMutableRawPointer?
        if total > byteCapacity {
            if total > retainLimit {
                oversized = .allocate(byteCount: total, alignment: 16)
                target = oversized!
            } else {
                bytes.deallocate()
                byteCapacity = max(total, byteCapacity * 2)
                bytes = .allocate(byteCount: byteCapacity, alignment: 16)
                target = bytes
            }
        }
        defer { oversized?.deallocate() }
        var offset = 0
        for i in 0..<n {
            let destination = target + offset
            args[i].copyBytes(to: destination)
            pointers[i] = UnsafePointer(destination.assumingMemoryBound(to: CChar.self))
            offset += lengths[i]
        }
        return body(Int32(n), pointers, UnsafePointer(lengths))
    }
}
