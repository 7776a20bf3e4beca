#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One 16 KiB buffer per thread that `SSL_read` decrypts into before plaintext is handed to the
/// caller.
///
/// Why per thread: a hub holds many idle connections, so a read buffer per engine would cost
/// 16 KiB each for nothing, and allocating per `receive` call would put malloc on the hot path. An
/// event-loop thread only ever decrypts for one connection at a time, so one buffer per thread is
/// enough. 16 KiB is the largest plaintext a single TLS record can carry, so one `SSL_read` never
/// has a reason to want more.
final class TLSReadScratch {
    static let capacity = 16 * 1024

    let bytes: UnsafeMutableRawPointer
    /// Set while plaintext in `bytes` is lent to a caller's closure. If that closure re-enters
    /// `receive` (on any engine), the nested call must not overwrite what is being read.
    private var lent = false

    private init() {
        bytes = UnsafeMutableRawPointer.allocate(byteCount: Self.capacity, alignment: 16)
    }

    deinit {
        bytes.deallocate()
    }

    /// Runs `body` with this thread's buffer, or, in the rare re-entrant case, with a temporary one
    /// so the outer caller's plaintext stays intact.
    static func with<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        let scratch = current
        if scratch.lent {
            let temporary = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
            defer { temporary.deallocate() }
            return try body(temporary)
        }
        scratch.lent = true
        defer { scratch.lent = false }
        return try body(UnsafeMutableRawBufferPointer(start: scratch.bytes, count: capacity))
    }

    /// This thread's instance, created on first use and released by the key's destructor when the
    /// thread exits (Swift has no thread-local storage of its own on Linux).
    private static var current: TLSReadScratch {
        if let existing = pthread_getspecific(tlsReadScratchKey) {
            return Unmanaged<TLSReadScratch>.fromOpaque(existing).takeUnretainedValue()
        }
        let created = TLSReadScratch()
        pthread_setspecific(tlsReadScratchKey, Unmanaged.passRetained(created).toOpaque())
        return created
    }
}

/// Process-wide key for `TLSReadScratch.current`. Swift initialises globals lazily and exactly once,
/// so the key is created on first use without a lock of our own.
private let tlsReadScratchKey: pthread_key_t = {
    var key = pthread_key_t()
    let rc = pthread_key_create(&key) { value in
        // Balances the passRetained in `current`: the thread's buffer dies with the thread.
        if let value { Unmanaged<TLSReadScratch>.fromOpaque(value).release() }
    }
    precondition(rc == 0, "pthread_key_create failed: \(rc)")
    return key
}()
