import Foundation
import HubIO
import HubTelemetry

// What the benchmark clients share (auth-bench, queue-bench, room-bench, ws-load): log lines,
// errors, /proc readings, percentiles, running a closure on a loop from the main thread, and the
// JSON summary printer. Not on any measured path.

/// Progress notes on stderr, prefixed with the tool's name (stdout carries the JSON summary).
public enum Log {
    public static func note(_ text: String) {
        FileHandle.standardError.write(Data("\(ProcessInfo.processInfo.processName): \(text)\n".utf8))
    }
}

public struct Failure: Error, CustomStringConvertible {
    public var description: String
    public init(_ text: String) { description = text }
}

/// Problems seen on any loop: counted, the first few kept word for word.
public enum Problems {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var first: [String] = []
    nonisolated(unsafe) private static var total = 0
    public static func add(_ text: String) {
        lock.lock()
        total += 1
        if first.count < 10 { first.append(text) }
        lock.unlock()
    }
    public static var list: [String] { lock.lock(); defer { lock.unlock() }; return first }
    public static var count: Int { lock.lock(); defer { lock.unlock() }; return total }
}

// MARK: - /proc readings

/// utime and stime of a process (all threads), in seconds.
public func processCPUTimes(_ pid: Int32) -> (user: Double, system: Double)? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
    let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
    return (u / tick, s / tick)
}

/// utime + stime of a process (all threads), in seconds.
public func processCPUSeconds(_ pid: Int32) -> Double? {
    processCPUTimes(pid).map { $0.user + $0.system }
}

public func selfCPUSeconds() -> Double {
    var ru = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &ru)
    return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
}

// MARK: - statistics and loops

/// The `p` quantile (0...1) of sorted nanosecond samples, in milliseconds; nil without samples.
public func percentile(_ sorted: [UInt64], _ p: Double) -> Double? {
    guard !sorted.isEmpty else { return nil }
    let i = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
    return Double(sorted[i]) / 1e6
}

/// p50 … max and mean of nanosecond samples (any order), in milliseconds, keyed `<name>_…`.
public func latencySummary(_ name: String, _ samples: [UInt64]) -> [(String, Any?)] {
    let s = samples.sorted()
    let mean = s.isEmpty ? nil : Double(s.reduce(0, &+)) / Double(s.count) / 1e6
    return [("\(name)_samples", s.count), ("\(name)_p50_ms", percentile(s, 0.5)), ("\(name)_p90_ms", percentile(s, 0.9)),
            ("\(name)_p99_ms", percentile(s, 0.99)), ("\(name)_p999_ms", percentile(s, 0.999)),
            ("\(name)_max_ms", s.last.map { Double($0) / 1e6 }), ("\(name)_mean_ms", mean)]
}

/// Runs `body` on `loop` and waits for its result (main thread).
public func onLoop<T>(_ loop: EventLoop, _ body: @escaping () -> T) -> T {
    let sem = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: T?
    loop.execute {
        result = body()
        sem.signal()
    }
    sem.wait()
    return result!
}

// MARK: - JSON out

/// Already encoded JSON, written as it is.
public struct RawJSON {
    public var text: String
    public init(text: String) { self.text = text }
}

/// A JSON object from ordered pairs: numbers, strings, booleans, arrays, nested pair lists and
/// `RawJSON`.
public func json(_ pairs: [(String, Any?)]) -> String {
    "{" + pairs.map { "\(encodeJSON($0.0)):\(encodeJSON($0.1))" }.joined(separator: ",") + "}"
}

public func encodeJSON(_ v: Any?) -> String {
    switch v {
    case nil: return "null"
    case let r as RawJSON: return r.text
    case let b as Bool: return b ? "true" : "false"
    case let d as Double: return d.isFinite ? String(format: "%.6g", d) : "null"
    case let i as Int: return String(i)
    case let i as Int64: return String(i)
    case let i as UInt64: return String(i)
    case let s as String: return JSONText.quoted(s)
    case let a as [String]: return "[" + a.map { encodeJSON($0) }.joined(separator: ",") + "]"
    case let p as [(String, Any?)]: return json(p)
    case let a as [Any?]: return "[" + a.map { encodeJSON($0) }.joined(separator: ",") + "]"
    case let o as [String: Any]:
        if let data = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]) { return String(decoding: data, as: UTF8.self) }
        return "null"
    default: return encodeJSON("\(v!)")
    }
}
