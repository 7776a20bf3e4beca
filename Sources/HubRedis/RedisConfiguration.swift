/// Where a Redis server is and every limit of a client talking to it, named, defaulted and
/// explained in one place.
///
/// Build it from a URL (`redis://[user:pass@]host:port/db`) with `init(url:)`, then adjust
/// the limits field by field.
public struct RedisConfiguration: Sendable, Hashable {
    /// Host name or IP address. Prefer an IP literal: hiredis 0.14 resolves names with a
    /// blocking `getaddrinfo` on the loop thread (fast for `/etc/hosts`, not for DNS).
    public var host: String
    /// TCP port.
    public var port: Int
    /// ACL user name (Redis 6+); sent as `AUTH user pass`. `nil` with a password: `AUTH pass`.
    public var username: String?
    /// Password; `nil` sends no `AUTH`.
    public var password: String?
    /// Logical database selected with `SELECT` after connecting (0 sends nothing).
    public var database: Int

    /// Timeout of a command sent without one. `nil`: commands wait until the reply or until the
    /// connection is lost. Keep it finite: a half-open connection is found through it.
    public var commandTimeout: Duration? = .seconds(5)
    /// How often the loop scans outstanding commands for expired timeouts. A command fails with
    /// `.timeout` between its timeout and its timeout plus one interval. One timer per client,
    /// never one per command.
    public var sweepInterval: Duration = .milliseconds(50)
    /// Time allowed for TCP connect plus the `AUTH`/`SELECT`/`PING` handshake; past it the attempt is abandoned and
    /// retried with backoff. hiredis has no connect timeout of its own.
    public var connectTimeout: Duration = .seconds(2)
    /// First reconnect delay; doubles on every failed attempt up to `reconnectMaxDelay`. Each
    /// delay is jittered down by up to half so that many hubs do not reconnect in lock step.
    public var reconnectBaseDelay: Duration = .milliseconds(50)
    /// Cap of the reconnect delay.
    public var reconnectMaxDelay: Duration = .seconds(2)
    /// Commands outstanding on one connection (written, reply not yet read, timed-out ones
    /// included) before `send` fails with `.backpressure`. Bounds memory when Redis stalls.
    public var maxPendingCommands: Int = 100_000
    /// A connection whose oldest outstanding command timed out this long ago is considered dead
    /// (half-open TCP, a wedged server) and is dropped and re-established. Commands with their own
    /// long timeout (a `BLPOP 60` sent with a 65 s timeout) are not affected until they time out.
    public var stallTimeout: Duration = .seconds(10)
    /// Name used in metric labels (`client="cache"`) and log lines.
    public var name: String = "redis"
    /// The server is a node of a Redis Cluster (URL scheme `redis+cluster://`): `host:port` is
    /// only the seed the slot map is learned from, and `RedisClient` routes every command to
    /// the master owning its key's slot. The database is always 0 on a cluster.
    public var cluster: Bool = false

    /// A server with no authentication and database 0.
    public init(host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `redis://[user:pass@]host[:port][/db]`, or `redis+cluster://[user:pass@]host[:port]`
    /// for a Redis Cluster seed (no database: a cluster has only database 0); port defaults to 6379, database to 0;
    /// user and password may be percent-encoded; an IPv6 host is written in brackets
    /// (`redis://[::1]:6380`). `rediss://` (TLS) is refused: Debian's hiredis 0.14 has no TLS.
    public init(url: String) throws(RedisURLError) {
        self = try RedisURLParser.parse(url)
    }
}

/// Why a Redis URL was refused. Each case names the offending part so that a bad
/// `DEVICEHUB_REDIS_URL` stops start-up with a message a person can act on.
public enum RedisURLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not `redis://`.
    case unsupportedScheme(String)
    /// No host between `//` (or `@`) and the port.
    case missingHost
    /// Not a number in 1...65535.
    case invalidPort(String)
    /// Not a non-negative number after `/`.
    case invalidDatabase(String)
    /// Bad percent-encoding in the user or password, or a malformed IPv6 literal.
    case malformed(String)

    public var description: String {
        switch self {
        case .unsupportedScheme(let s):
            return s == "rediss" ? "redis URL: rediss:// (TLS) is not supported by hiredis 0.14; use redis://"
                                 : "redis URL: unsupported scheme '\(s)', expected redis:// or redis+cluster://"
        case .missingHost: return "redis URL: missing host (expected redis://[user:pass@]host:port/db)"
        case .invalidPort(let p): return "redis URL: invalid port '\(p)' (expected 1-65535)"
        case .invalidDatabase(let d): return "redis URL: invalid database '\(d)' (expected a number >= 0)"
        case .malformed(let m): return "redis URL: \(m)"
        }
    }
}

/// The URL grammar, kept apart from the configuration so its error cases read top to bottom.
enum RedisURLParser {
    static func parse(_ url: String) throws(RedisURLError) -> RedisConfiguration {
        guard let schemeEnd = url.range(of: "://") else {
            throw .unsupportedScheme(url.isEmpty ? "(empty)" : String(url.prefix(16)))
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" || scheme == "redis+cluster" else { throw .unsupportedScheme(scheme) }
        var rest = Substring(url[schemeEnd.upperBound...])
        // Query strings and fragments carry nothing we support; refuse rather than ignore.
        if let q = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            throw .malformed("query or fragment '\(rest[q...])' is not supported")
        }

        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let db = Int(dbText), db >= 0 else { throw .invalidDatabase(String(dbText)) }
                database = db
            }
        }

        var username: String?
        var password: String?
        // The last '@' splits credentials from the host: a password may contain a raw '@'.
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = try percentDecode(userinfo[..<colon], what: "user")
                username = user.isEmpty ? nil : user
                password = try percentDecode(userinfo[userinfo.index(after: colon)...], what: "password")
            } else if !userinfo.isEmpty {
                // `redis://secret@host` is the form many tools use for a password alone.
                password = try percentDecode(userinfo, what: "password")
            }
        }

        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .malformed("unterminated IPv6 address '\(rest)'") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .malformed("unexpected '\(after)' after IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw .missingHost }
        var port = 6379
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { throw .invalidPort(String(portText)) }
            port = p
        }
        var configuration = RedisConfiguration(host: String(host), port: port, username: username, password: password, database: database)
        if scheme == "redis+cluster" {
            guard database == 0 else { throw .invalidDatabase("\(database) (a Redis Cluster has only database 0)") }
            configuration.cluster = true
        }
        return configuration
    }

    static func percentDecode(_ text: Substring, what: String) throws(RedisURLError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var it = Array(text.utf8)[...]
        while let byte = it.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard it.count >= 2, let hi = hexValue(it[it.startIndex]), let lo = hexValue(it[it.startIndex + 1]) else {
                    throw .malformed("bad percent-encoding in \(what)")
                }
                bytes.append(hi << 4 | lo)
                it = it.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw .malformed("\(what) is not UTF-8 after percent-decoding") }
        return decoded
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating; what the loop's monotonic clock counts in.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let (ns, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return ns &+ UInt64(attoseconds / 1_000_000_000)
    }
}
