/// One RESP2 reply, decoded and owned by Swift (hiredis frees its `redisReply` as soon as the
/// callback returns, so every byte is copied out before the value is handed on).
///
/// A top-level error reply never reaches a caller as a value: `send` turns it into
/// `RedisError.server`. `.error` appears only nested inside arrays (a failed command inside
/// `EXEC`, a Lua table holding an error), where the rest of the array is still meaningful.
public enum RedisValue: Sendable, Hashable {
    /// A bulk string: arbitrary bytes, NUL included.
    case string([UInt8])
    /// A simple status line such as `OK` or `QUEUED`.
    case status(String)
    /// A 64-bit signed integer.
    case integer(Int64)
    /// A multi-bulk reply; elements may be of any kind, including `.null`.
    case array([RedisValue])
    /// RESP2's nil bulk string or nil array (`GET` of a missing key, a `BLPOP` timeout).
    case null
    /// An error reply nested inside an array; the message includes its code (`WRONGTYPE ...`).
    case error(String)
}

extension RedisValue {
    /// The bytes of a bulk string or status line; `nil` for anything else.
    public var bytes: [UInt8]? {
        switch self {
        case .string(let b): return b
        case .status(let s): return Array(s.utf8)
        default: return nil
        }
    }

    /// A bulk string or status decoded as UTF-8 (invalid sequences become U+FFFD); `nil`
    /// for other kinds. Use `bytes` when the value may be binary.
    public var text: String? {
        switch self {
        case .string(let b): return String(decoding: b, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    /// The value of an integer reply, or of a bulk string holding a decimal integer (what
    /// `GET` returns for a counter written by `INCR`).
    public var integer: Int64? {
        switch self {
        case .integer(let i): return i
        case .string(let b): return Int64(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    /// The elements of an array reply.
    public var array: [RedisValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// True for RESP2 nil.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension RedisValue: CustomStringConvertible {
    /// A redis-cli-like rendering for logs and test failures; binary bytes are escaped.
    public var description: String {
        switch self {
        case .string(let b): return "\"" + Self.escape(b) + "\""
        case .status(let s): return s
        case .integer(let i): return "(integer) \(i)"
        case .null: return "(nil)"
        case .error(let e): return "(error) \(e)"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        }
    }

    /// Printable ASCII as is, everything else as `\xNN`, and long values shortened: a 1 MiB
    /// value in a test failure message would drown the message.
    static func escape(_ bytes: [UInt8]) -> String {
        var out = ""
        for byte in bytes.prefix(256) {
            switch byte {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20...0x7e: out.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = String(byte, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        if bytes.count > 256 { out += "…(\(bytes.count) bytes)" }
        return out
    }
}

/// Why a Redis command did not produce a value. Small and closed on purpose: callers switch on
/// it to decide between retrying (`notConnected`, `connectionLost`, `timeout`), reporting a bug
/// (`server`, `invalidCommand`, `unexpectedReply`) and shedding load (`backpressure`).
public enum RedisError: Error, Sendable, Hashable {
    /// The client has no usable connection right now (never connected yet, or reconnecting).
    /// Sent commands fail with this at once instead of queueing without bound.
    case notConnected
    /// The connection went away while the command was outstanding. Redis may or may not have
    /// executed it: only idempotent commands are safe to retry blindly.
    case connectionLost
    /// No reply within the command's timeout. The command stays on the wire (Redis may still run
    /// it); its late reply is read and dropped.
    case timeout
    /// Redis answered with an error reply; the message starts with its code
    /// (`WRONGTYPE Operation against a key holding the wrong kind of value`).
    case server(String)
    /// hiredis could not parse what the server sent; the connection is dropped and re-established.
    case protocolError(String)
    /// A reply of a kind the typed helper did not expect (e.g. `INCR` answering with a string).
    case unexpectedReply(RedisValue)
    /// The command cannot be sent on this client: empty, or one that changes the reply
    /// protocol (`SUBSCRIBE`, `MONITOR`, `CLIENT REPLY`), which belongs on a `RedisSubscriber`.
    case invalidCommand(String)
    /// Too many commands outstanding on the connection (`RedisConfiguration.maxPendingCommands`).
    case backpressure
    /// The client was closed by its owner.
    case closed
}

extension RedisError {
    /// The error code of a server error: its first word (`ERR`, `WRONGTYPE`, `NOSCRIPT`, `MOVED`).
    public var serverCode: String? {
        guard case .server(let message) = self else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    /// True when a retry on a healthy connection may succeed (the error says nothing about the
    /// command itself).
    public var isTransient: Bool {
        switch self {
        case .notConnected, .connectionLost, .timeout, .backpressure: return true
        default: return false
        }
    }
}

extension RedisError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notConnected: return "redis: not connected"
        case .connectionLost: return "redis: connection lost"
        case .timeout: return "redis: command timed out"
        case .server(let m): return "redis: server error: \(m)"
        case .protocolError(let m): return "redis: protocol error: \(m)"
        case .unexpectedReply(let v): return "redis: unexpected reply: \(v)"
        case .invalidCommand(let m): return "redis: invalid command: \(m)"
        case .backpressure: return "redis: too many commands outstanding"
        case .closed: return "redis: client closed"
        }
    }
}
