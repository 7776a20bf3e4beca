import Glibc

/// Immutable bytes shared by many connections: a fan-out frame is encoded once into one of
/// these, and every recipient's queue holds a reference, not a copy.
public final class SharedBytes: @unchecked Sendable {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var count: Int { bytes.count }
}

/// A connection's pending output: owned bytes coalesced into one growing buffer, and shared
/// frames referenced in place. Flushed with one `sendmsg` of up to `maxIovecs` pieces.
///
/// Ordering is preserved: owned bytes written after a shared frame go into a new owned chunk
/// after it. Capacity of the owned buffer is kept between flushes so a steady request/response
/// connection does not allocate.
public struct OutboundQueue {
    enum Chunk {
        case owned([UInt8])
        case shared(SharedBytes)

        var count: Int {
            switch self {
            case .owned(let b): return b.count
            case .shared(let s): return s.count
            }
        }
    }

    /// Chunks before `tail`, oldest first, from `head` on.
    private var chunks: [Chunk] = []
    private var head = 0
    /// Bytes of the first chunk already written.
    private var headOffset = 0
    /// Owned bytes appended after all chunks; the usual (and cheapest) place for output.
    var tail: [UInt8] = []
    /// Bytes not yet written.
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        tail.append(contentsOf: bytes)
        count += bytes.count
    }

    public mutating func append(_ bytes: [UInt8]) {
        tail.append(contentsOf: bytes)
        count += bytes.count
    }

    public mutating func append(shared: SharedBytes) {
        guard shared.count > 0 else { return }
        if !tail.isEmpty {
            chunks.append(.owned(tail))
            tail = []
        }
        chunks.append(.shared(shared))
        count += shared.count
    }

    /// Lets an encoder write straight into the owned tail (no intermediate buffer).
    public mutating func withTail<R>(_ body: (inout [UInt8]) throws -> R) rethrows -> R {
        let before = tail.count
        defer { count += tail.count - before }
        return try body(&tail)
    }

    static let maxIovecs = 64

    /// Calls `write` with up to `maxIovecs` buffers in order; `write` returns bytes written
    /// (or nil when it would block). Returns total bytes written.
    public mutating func flush(_ write: (UnsafeBufferPointer<iovec>) throws -> Int?) rethrows -> Int {
        var total = 0
        while count > 0 {
            let (written, requested): (Int?, Int) = try withIovecs { iov in
                var requested = 0
                for v in iov { requested += v.iov_len }
                return (try write(iov), requested)
            }
            guard let n = written, n > 0 else { break }
            consume(n)
            total += n
            // A short write means the socket buffer is full: stop until EPOLLOUT.
            if n < requested { break }
        }
        return total
    }

    private func withIovecs<R>(_ body: (UnsafeBufferPointer<iovec>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: iovec.self, capacity: Self.maxIovecs) { iov in
            var n = 0
            // The pointers stay valid for the duration of `body` because `self` is not mutated
            // until it returns and the arrays are held by `chunks`/`tail`.
            var i = head
            while i < chunks.count && n < Self.maxIovecs - 1 {
                let skip = i == head ? headOffset : 0
                switch chunks[i] {
                case .owned(let b): b.withUnsafeBytes { iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress! + skip), iov_len: $0.count - skip) }
                case .shared(let s): s.bytes.withUnsafeBytes { iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress! + skip), iov_len: $0.count - skip) }
                }
                n += 1
                i += 1
            }
            if i == chunks.count && !tail.isEmpty {
                let skip = head == chunks.count ? headOffset : 0
                tail.withUnsafeBytes { iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress! + skip), iov_len: $0.count - skip) }
                n += 1
            }
            return try body(UnsafeBufferPointer(rebasing: iov[0..<n]))
        }
    }

    private mutating func consume(_ n: Int) {
        var left = n
        count -= n
        while left > 0 && head < chunks.count {
            let available = chunks[head].count - headOffset
            if left >= available {
                left -= available
                chunks[head] = .owned([]) // drop the reference now
                head += 1
                headOffset = 0
            } else {
                headOffset += left
                left = 0
            }
        }
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            head = 0
            if left > 0 {
                if left >= tail.count - headOffset {
                    tail.removeAll(keepingCapacity: true)
                    headOffset = 0
                } else {
                    headOffset += left
                }
            } else if tail.isEmpty {
                headOffset = 0
            }
        }
        if count == 0 {
            tail.removeAll(keepingCapacity: tail.capacity <= 64 * 1024)
            headOffset = 0
        }
    }

    /// Gives back the owned buffer's capacity when nothing is queued. Called by the loop's
    /// sweep: an idle connection then holds no output buffer (a few hundred bytes each over
    /// 10,000 connections), and a busy one re-allocates at most once per sweep.
    public mutating func releaseCapacityIfEmpty() {
        guard count == 0, tail.capacity > 0, chunks.isEmpty else { return }
        tail = []
        headOffset = 0
    }

    /// Drops everything (connection closing).
    public mutating func removeAll() {
        chunks = []
        head = 0
        headOffset = 0
        tail = []
        count = 0
    }
}
