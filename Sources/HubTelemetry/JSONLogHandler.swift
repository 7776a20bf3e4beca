import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line to a file descriptor (stderr by
/// default): `{"ts":"2026-11-24T05:20:00.123Z","level":"info","logger":"http","msg":"...",...}`.
///
/// Metadata keys become top-level fields, so a request's `request_id` is on every line logged
/// with that request's logger. Lines are built in a local buffer and written with one `write`
/// call under a lock, so lines from different threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let sink: LogSink

    public init(label: String, level: Logger.Level, sink: LogSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var line = "{\"ts\":\""
        line += Self.timestamp()
        line += "\",\"level\":\""
        line += level.rawValue
        line += "\",\"logger\":"
        Self.appendQuoted(label, to: &line)
        line += ",\"msg\":"
        Self.appendQuoted(message.description, to: &line)
        var merged = metadata
        if let explicit { merged.merge(explicit) { $1 } }
        for key in merged.keys.sorted() {
            line += ","
            Self.appendQuoted(key, to: &line)
            line += ":"
            Self.appendValue(merged[key]!, to: &line)
        }
        line += "}\n"
        sink.write(line)
    }

    static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let s): appendQuoted(s, to: &out)
        case .stringConvertible(let c):
            if let n = c as? any BinaryInteger { out += "\(n)" } else if let d = c as? Double, d.isFinite { out += "\(d)" } else if let b = c as? Bool { out += b ? "true" : "false" } else { appendQuoted(c.description, to: &out) }
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() { if i > 0 { out += "," }; appendValue(item, to: &out) }
            out += "]"
        case .dictionary(let dict):
            out += "{"
            for (i, key) in dict.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                appendQuoted(key, to: &out); out += ":"; appendValue(dict[key]!, to: &out)
            }
            out += "}"
        }
    }

    static func appendQuoted(_ s: String, to out: inout String) { JSONText.appendQuoted(s, to: &out) }

    static func timestamp() -> String { JSONText.now() }
}

/// Where log lines go. A class so that every handler copy shares one lock.
public final class LogSink: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    /// Lines captured in memory instead of written (tests).
    private var captured: [String]?

    public init(fd: Int32) { self.fd = fd }

    public static let standardError = LogSink(fd: 2)
    public static let standardOutput = LogSink(fd: 1)

    /// A sink that keeps lines in memory, for tests.
    public static func capturing() -> LogSink {
        let sink = LogSink(fd: -1)
        sink.captured = []
        return sink
    }

    public var lines: [String] {
        lock.lock(); defer { lock.unlock() }
        return captured ?? []
    }

    func write(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        if captured != nil { captured!.append(line); return }
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 { if errno == EINTR { continue }; return }
            offset += n
        }
        bytes.removeAll()
    }
}
