import Foundation
import HubHTTP
import Logging

/// Every setting and limit of the server, with its default and the reason for it, in one
/// place. The command line (`devicehub --help`) and `DEVICEHUB_*` environment variables map
/// onto this struct; `validate()` turns a bad combination into a message naming the setting.
public struct ServerConfig: Sendable {
    /// Address to listen on for plain HTTP. `0.0.0.0` (all IPv4) by default; `::` for IPv6.
    public var host = "0.0.0.0"
    /// Plain HTTP port; 0 lets the kernel pick (tests).
    public var port = 8080
    /// HTTPS port, used only when a certificate and key are configured.
    public var tlsPort = 8443
    public var tlsCertificateFile: String?
    public var tlsPrivateKeyFile: String?
    /// Event loop threads. One per core: each loop owns its connections, so more loops than
    /// cores only adds context switches.
    public var loops = ProcessInfo.processInfo.activeProcessorCount
    /// Pin loop threads to cores (benchmarks, dedicated hosts).
    public var pinCPUs = false
    /// Connections the process holds at most (split evenly over loops); further ones are closed
    /// at accept. Each idle connection costs a descriptor and a few hundred bytes.
    public var maxConnections = 100_000

    /// Request line longer than this: 414. 8 KiB is what common proxies allow.
    public var maxRequestLineBytes = 8192
    /// Whole request head larger than this: 431.
    public var maxHeaderBytes = 16 * 1024
    /// More header fields than this: 431.
    public var maxHeaderCount = 100
    /// Request body larger than this: 413. Hub requests are small JSON documents.
    public var maxBodyBytes = 1 << 20
    /// Pipelined requests a connection may have in flight before the server stops reading from
    /// it; bounds the memory one client can pin with queued responses.
    public var maxPipelinedRequests = 16
    /// Time allowed from a request's first byte to the end of its head: 408 and close after it
    /// (slowloris).
    public var requestHeadTimeout: Double = 10
    /// Time allowed to receive a request body once the head is in: 408 and close after it.
    public var requestBodyTimeout: Double = 30
    /// An idle keep-alive connection is closed after this. Longer than a load balancer's 60 s so
    /// that the balancer, not the hub, closes idle connections (no race on reuse).
    public var keepAliveTimeout: Double = 75
    /// A connection whose queued output does not move for this long is closed (a client that
    /// stopped reading).
    public var writeTimeout: Double = 30
    /// Time to finish in-flight requests after SIGTERM before exiting anyway.
    public var shutdownGracePeriod: Double = 10

    /// `redis://[user:pass@]host:port/db`, or `redis+cluster://[user:pass@]host:port` for a
    /// Redis Cluster (the address of any node: the slot map is learned from it). With
    /// `postgresURL`, the hub keeps hot state in Redis; without both, it runs on the embedded
    /// store. Use an IP address: hiredis 0.14 resolves names with a blocking call.
    public var redisURL: String?
    /// `postgres://user:pass@host:port/db`: durable records; pending migrations apply at start.
    public var postgresURL: String?
    /// Where the embedded store keeps its SQLite file (used when no URLs are configured).
    public var dataDirectory = "./devicehub-data"

    /// Log level: trace, debug, info, notice, warning, error, critical.
    public var logLevel: Logger.Level = .info
    /// One JSON line per request (method, path, status, bytes, duration, request id).
    public var accessLog = true

    // MARK: identity

    /// The Supabase project (`https://<ref>.supabase.co`): JWT issuer `<url>/auth/v1`, JWKS
    /// fetched from `<url>/auth/v1/.well-known/jwks.json`.
    public var supabaseURL: String?
    /// A JWKS file used instead of fetching (re-read on the refresh interval).
    public var supabaseJWKSFile: String?
    /// Extra CA certificates (PEM) trusted when fetching the JWKS over HTTPS (a private CA in
    /// front of a self-hosted Supabase; tests).
    public var supabaseCAFile: String?
    /// HS256 shared secret of legacy Supabase projects (its raw UTF-8 bytes are the key). HS256
    /// tokens are refused without it.
    public var supabaseJWTSecret: String?
    /// The operator's bootstrap credential for the admin API; nil: the admin API takes only
    /// API keys with scope `admin`.
    public var adminToken: String?
    /// Key of the keyed hash that activation codes are stored under (hex or base64, ≥ 32
    /// bytes). Every node of a cluster needs the same one. Unset: the embedded store keeps a
    /// generated key in `--data-dir`; with Redis + PostgreSQL it is required.
    public var hashKey: String?
    /// A device session token expires after this long without use (the TTL slides on use).
    public var deviceTokenTTL: Double = 3600
    /// Activation codes expire this long after provisioning.
    public var activationCodeTTL: Double = 86_400
    /// Failed credential attempts allowed per client IP per minute (then 429 until the minute
    /// passes). At least 100 by default: many devices may share one NAT address.
    public var authFailuresPerMinutePerIP = 100
    /// Requests per minute per principal (device, user, API key) and, on open routes, per IP.
    public var requestsPerMinute = 6000
    /// Clock skew allowed on JWT `exp`/`nbf`, in seconds.
    public var jwtLeeway: Double = 30
    /// Seconds a `/ws/customer` socket opened without `Authorization` has to send its `auth`
    /// message before it is closed with `auth_failed`.
    public var customerAuthDeadline: Double = 10
    /// This process's name among the hub's nodes: presence records it and other nodes address
    /// device wake-ups to it (`node:<id>`). Unique per running process; the default is the
    /// host name and process id.
    public var nodeID: String = ServerConfig.defaultNodeID()
    /// Seconds a device's presence lasts without a heartbeat: a node killed without closing its
    /// sockets has its devices offline within this time. Over two heartbeat intervals.
    public var presenceTTL: Double = 90
    /// Seconds a diagnostic session may wait for approval before it expires.
    public var sessionApprovalTTL: Double = 3600
    /// Unfinished commands one device may have before proposals get 429 `queue_full`.
    public var deviceQueueCap = 1000
    /// Seconds between reaper passes (lapsed leases, dead letters, expiries).
    public var reaperInterval: Double = 1
    /// Seconds between checks of every unfinished record against the hot queue.
    public var queueReconcileInterval: Double = 300
    /// Log lines (and status reports) per second one device socket may send; four seconds'
    /// worth may come in a burst. Beyond: `rate_limited`.
    public var deviceLogRate = 500
    /// Newest events each room's history keeps (for `subscribe` with `since`).
    public var roomHistoryLength = 1000
    /// Seconds a room's history lives after its last event.
    public var roomHistoryTTL: Double = 86_400
    /// Bytes of room events waiting for a slow subscriber before its oldest `execution.log`
    /// events are dropped (it gets a `lagged` notice).
    public var subscriberSoftLimit = 256 * 1024
    /// Bytes of room events that cannot be dropped waiting for a slow subscriber before it is
    /// closed with `slow_consumer` (4008).
    public var subscriberHardLimit = 1024 * 1024

    public init() {}

    var roomSettings: RoomSettings {
        RoomSettings(historyLength: roomHistoryLength, historyTTL: .milliseconds(Int64(roomHistoryTTL * 1000)),
                     subscriberSoftLimit: subscriberSoftLimit, subscriberHardLimit: subscriberHardLimit)
    }

    /// `<hostname>-<pid>`: unique among the processes of one host, readable in logs.
    static func defaultNodeID() -> String {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0 ? String(cString: name) : "node"
        return String((host.isEmpty ? "node" : host).prefix(64)) + "-" + String(getpid())
    }

    var parserLimits: HTTPParserLimits {
        var l = HTTPParserLimits()
        l.maxRequestLineBytes = maxRequestLineBytes
        l.maxHeaderBytes = maxHeaderBytes
        l.maxHeaderCount = maxHeaderCount
        l.maxBodyBytes = maxBodyBytes
        return l
    }

    var tlsEnabled: Bool { tlsCertificateFile != nil || tlsPrivateKeyFile != nil }

    /// Checks the configuration; the error text names the setting and the accepted range.
    public func validate() throws(ConfigError) {
        func check(_ ok: Bool, _ message: String) throws(ConfigError) { if !ok { throw ConfigError(message: message) } }
        try check((0...65535).contains(port), "--port must be 0...65535, got \(port)")
        try check((0...65535).contains(tlsPort), "--tls-port must be 0...65535, got \(tlsPort)")
        try check(loops >= 1 && loops <= 256, "--loops must be 1...256, got \(loops)")
        try check(maxConnections >= 1, "--max-connections must be at least 1")
        try check(maxRequestLineBytes >= 64, "--max-request-line-bytes must be at least 64")
        try check(maxHeaderBytes >= maxRequestLineBytes, "--max-header-bytes must be at least --max-request-line-bytes (\(maxRequestLineBytes))")
        try check(maxHeaderCount >= 1, "--max-header-count must be at least 1")
        try check(maxBodyBytes >= 0, "--max-body-bytes must not be negative")
        try check(maxPipelinedRequests >= 1, "--max-pipelined-requests must be at least 1")
        for (name, v) in [("--request-head-timeout", requestHeadTimeout), ("--request-body-timeout", requestBodyTimeout),
                          ("--keep-alive-timeout", keepAliveTimeout), ("--write-timeout", writeTimeout)] {
            try check(v > 0 && v <= 86_400, "\(name) must be in (0, 86400] seconds, got \(v)")
        }
        try check((redisURL == nil) == (postgresURL == nil), "--redis-url and --postgres-url must be given together (or neither, for the embedded store)")
        if let redisURL {
            try check(redisURL.hasPrefix("redis://") || redisURL.hasPrefix("redis+cluster://"),
                      "--redis-url must start with redis:// (one Redis) or redis+cluster:// (a Redis Cluster seed)")
        }
        if let postgresURL { try check(postgresURL.hasPrefix("postgres://") || postgresURL.hasPrefix("postgresql://"), "--postgres-url must start with postgres://") }
        if let supabaseURL { try check(supabaseURL.hasPrefix("https://") || supabaseURL.hasPrefix("http://"), "--supabase-url must be an http(s) URL, got \(supabaseURL)") }
        if let file = supabaseJWKSFile { try check(FileManager.default.isReadableFile(atPath: file), "--supabase-jwks-file: cannot read \(file)") }
        if let file = supabaseCAFile { try check(FileManager.default.isReadableFile(atPath: file), "--supabase-ca-file: cannot read \(file)") }
        if let secret = supabaseJWTSecret { try check(secret.utf8.count >= 32, "--supabase-jwt-secret must be at least 32 bytes") }
        if let token = adminToken { try check(token.utf8.count >= 16 && token.utf8.count <= 512, "--admin-token must be 16...512 bytes") }
        try check(redisURL == nil || hashKey != nil, "--hash-key is required with --redis-url (every node must hash activation codes with the same key)")
        try check(deviceTokenTTL >= 60 && deviceTokenTTL <= 30 * 86_400, "--device-token-ttl must be 60...2592000 seconds")
        try check(activationCodeTTL >= 60 && activationCodeTTL <= 30 * 86_400, "--activation-code-ttl must be 60...2592000 seconds")
        try check((1...10_000_000).contains(authFailuresPerMinutePerIP), "--auth-failures-per-minute-per-ip must be 1...10000000")
        try check((1...10_000_000).contains(requestsPerMinute), "--requests-per-minute must be 1...10000000")
        try check(jwtLeeway >= 0 && jwtLeeway <= 300, "--jwt-leeway must be 0...300 seconds")
        try check(customerAuthDeadline > 0 && customerAuthDeadline <= 300, "--customer-auth-deadline must be in (0, 300] seconds")
        try check((1...128).contains(nodeID.utf8.count) && nodeID.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }),
                  "--node-id must be 1...128 printable ASCII characters without spaces")
        try check(presenceTTL >= 1 && presenceTTL <= 3600, "--presence-ttl must be 1...3600 seconds")
        try check(sessionApprovalTTL >= 1 && sessionApprovalTTL <= 30 * 86_400, "--session-approval-ttl must be 1...2592000 seconds")
        try check((1...1_000_000).contains(deviceQueueCap), "--device-queue-cap must be 1...1000000")
        try check(reaperInterval >= 0.05 && reaperInterval <= 60, "--reaper-interval must be 0.05...60 seconds")
        try check(queueReconcileInterval >= 1 && queueReconcileInterval <= 86_400, "--queue-reconcile-interval must be 1...86400 seconds")
        try check((1...100_000).contains(roomHistoryLength), "--room-history-length must be 1...100000")
        try check((1...1_000_000).contains(deviceLogRate), "--device-log-rate must be 1...1000000 lines per second")
        try check(roomHistoryTTL >= 1 && roomHistoryTTL <= 30 * 86_400, "--room-history-ttl must be 1...2592000 seconds")
        try check((4096...(256 << 20)).contains(subscriberSoftLimit), "--subscriber-soft-limit must be 4096...268435456 bytes")
        try check(subscriberHardLimit >= subscriberSoftLimit && subscriberHardLimit <= 1 << 30,
                  "--subscriber-hard-limit must be at least --subscriber-soft-limit and at most 1073741824 bytes")
        try check(shutdownGracePeriod >= 0 && shutdownGracePeriod <= 3600, "--shutdown-grace-period must be 0...3600 seconds")
        if tlsEnabled {
            guard let cert = tlsCertificateFile, let key = tlsPrivateKeyFile else {
                throw ConfigError(message: "--tls-cert and --tls-key must be given together")
            }
            try check(FileManager.default.isReadableFile(atPath: cert), "--tls-cert: cannot read \(cert)")
            try check(FileManager.default.isReadableFile(atPath: key), "--tls-key: cannot read \(key)")
            try check(tlsPort != port || port == 0, "--tls-port must differ from --port")
        }
    }
}

/// A configuration problem, reported at start-up before anything listens.
public struct ConfigError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
