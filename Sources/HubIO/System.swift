import CHubShims
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, and errno. Every syscall of the hub goes through
/// `syscall(_:_:)` so that errors always carry both.
public struct IOError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The outcome of a non-blocking call: done with a value, or it would have blocked.
public enum IOResult<T> {
    case done(T)
    case wouldBlock
}

/// Runs a system call: retries `EINTR`, maps `EAGAIN`/`EWOULDBLOCK` to `.wouldBlock`, throws an
/// `IOError` naming the call for anything else. `body` returns the call's raw result.
@inline(__always)
@discardableResult
public func syscall<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws -> IOResult<T> {
    while true {
        let rc = body()
        if rc >= 0 { return .done(rc) }
        let err = Glibc.errno
        if err == EINTR { continue }
        if err == EAGAIN || err == EWOULDBLOCK { return .wouldBlock }
        throw IOError(call: "\(name)", errno: err)
    }
}

/// Same as `syscall` for calls where "would block" cannot happen (or is an error).
@inline(__always)
@discardableResult
public func syscallChecked<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws -> T {
    switch try syscall(name, body) {
    case .done(let v): return v
    case .wouldBlock: throw IOError(call: "\(name)", errno: EAGAIN)
    }
}

/// Monotonic clock in nanoseconds.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall clock, whole seconds since the epoch (for `Date` headers and logs).
@inline(__always)
public func unixSeconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int(ts.tv_sec)
}

/// Wall clock, milliseconds since the epoch (lease deadlines and expiries shared across nodes).
@inline(__always)
public func unixMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) &* 1000 &+ Int64(ts.tv_nsec / 1_000_000)
}

/// Raises the soft file-descriptor limit to the hard limit; returns (soft, hard).
public func raiseFileDescriptorLimit() -> (soft: UInt64, hard: UInt64) {
    var soft: UInt64 = 0
    var hard: UInt64 = 0
    _ = hub_raise_nofile_limit(&soft, &hard)
    return (soft, hard)
}

/// Closes a descriptor, ignoring EINTR per Linux semantics (the fd is gone either way).
@inline(__always)
func closeDescriptor(_ fd: Int32) {
    _ = Glibc.close(fd)
}
