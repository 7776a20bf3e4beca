import ArgumentParser
import Foundation
import HubIO
import HubServer
import HubTelemetry
import Logging

/// `devicehub`: the hub server. Every flag has a `DEVICEHUB_*` environment variable (the flag
/// name upper-cased, dashes as underscores); a flag on the command line wins over the variable.
struct DevicehubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devicehub",
        abstract: "DeviceHub: a real-time hub for device agents, customer portals and approvers.",
        discussion: """
        With no --redis-url and --postgres-url the hub runs on its embedded store. Every option \
        can also be set through an environment variable: --port is DEVICEHUB_PORT, \
        --max-body-bytes is DEVICEHUB_MAX_BODY_BYTES, and so on.
        """,
        version: "\(BuildInfo.version) (\(BuildInfo.gitCommit))")

    @Option(help: "Address to listen on (0.0.0.0 for all IPv4, :: for IPv6).")
    var host = ServerConfig().host
    @Option(help: "HTTP port (0: any free port).")
    var port = ServerConfig().port
    @Option(help: "HTTPS port, used when --tls-cert and --tls-key are set.")
    var tlsPort = ServerConfig().tlsPort
    @Option(help: "PEM certificate chain for HTTPS. SIGHUP reloads it.")
    var tlsCert: String?
    @Option(help: "PEM private key for HTTPS.")
    var tlsKey: String?
    @Option(help: "Event loop threads (default: one per core).")
    var loops = ServerConfig().loops
    @Flag(inversion: .prefixedNo, help: "Pin each loop thread to a core.")
    var pinCpus = ServerConfig().pinCPUs
    @Option(help: "Most connections held at once; more are closed at accept.")
    var maxConnections = ServerConfig().maxConnections
    @Option(help: "Longest request line in bytes (414 beyond).")
    var maxRequestLineBytes = ServerConfig().maxRequestLineBytes
    @Option(help: "Largest request head in bytes (431 beyond).")
    var maxHeaderBytes = ServerConfig().maxHeaderBytes
    @Option(help: "Most header fields in a request (431 beyond).")
    var maxHeaderCount = ServerConfig().maxHeaderCount
    @Option(help: "Largest request body in bytes (413 beyond).")
    var maxBodyBytes = ServerConfig().maxBodyBytes
    @Option(help: "Pipelined requests in flight per connection before reading pauses.")
    var maxPipelinedRequests = ServerConfig().maxPipelinedRequests
    @Option(help: "Seconds to receive a request head (408 and close after).")
    var requestHeadTimeout = ServerConfig().requestHeadTimeout
    @Option(help: "Seconds to receive a request body (408 and close after).")
    var requestBodyTimeout = ServerConfig().requestBodyTimeout
    @Option(help: "Seconds an idle keep-alive connection stays open (keep above the load balancer's 60).")
    var keepAliveTimeout = ServerConfig().keepAliveTimeout
    @Option(help: "Seconds queued output may stall before the connection is closed.")
    var writeTimeout = ServerConfig().writeTimeout
    @Option(help: "Seconds to finish in-flight requests after SIGTERM.")
    var shutdownGracePeriod = ServerConfig().shutdownGracePeriod
    @Option(help: "Redis URL (redis://[user:pass@]host:port/db, or redis+cluster://host:port for a Redis Cluster); with --postgres-url, instead of the embedded store.")
    var redisUrl: String?
    @Option(help: "PostgreSQL URL (postgres://user:pass@host:port/db); pending migrations apply at start.")
    var postgresUrl: String?
    @Option(help: "Directory of the embedded store's SQLite file (when no URLs are given).")
    var dataDir = ServerConfig().dataDirectory
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"
    @Flag(inversion: .prefixedNo, help: "Write one JSON access log line per request.")
    var accessLog = ServerConfig().accessLog
    @Option(help: "Supabase project URL (https://<ref>.supabase.co): JWT issuer <url>/auth/v1 and its JWKS.")
    var supabaseUrl: String?
    @Option(help: "JWKS file to verify Supabase JWTs with, instead of fetching it.")
    var supabaseJwksFile: String?
    @Option(help: "Extra CA certificates (PEM) trusted when fetching the JWKS over HTTPS.")
    var supabaseCaFile: String?
    @Option(help: "HS256 secret of a legacy Supabase project (HS256 tokens are refused without it).")
    var supabaseJwtSecret: String?
    @Option(help: "Bearer token of the admin API (none: admin API keys only).")
    var adminToken: String?
    @Option(help: "Key for hashing activation codes (hex or base64, >= 32 bytes); required with --redis-url.")
    var hashKey: String?
    @Option(help: "Seconds a device token lives without use.")
    var deviceTokenTtl = ServerConfig().deviceTokenTTL
    @Option(help: "Seconds an activation code stays valid.")
    var activationCodeTtl = ServerConfig().activationCodeTTL
    @Option(help: "Failed credential attempts per client IP per minute before 429.")
    var authFailuresPerMinutePerIp = ServerConfig().authFailuresPerMinutePerIP
    @Option(help: "Requests per minute per device, user or API key (and per IP on open routes).")
    var requestsPerMinute = ServerConfig().requestsPerMinute
    @Option(help: "Seconds of clock skew allowed on JWT exp/nbf.")
    var jwtLeeway = ServerConfig().jwtLeeway
    @Option(help: "Seconds a /ws/customer socket without Authorization has to send its auth message.")
    var customerAuthDeadline = ServerConfig().customerAuthDeadline
    @Option(help: "This node's id among the hub's processes (unique per process; default: hostname-pid).")
    var nodeId: String?
    @Option(help: "Seconds a device stays online without a heartbeat (its node died): refreshed by every heartbeat.")
    var presenceTtl = ServerConfig().presenceTTL
    @Option(help: "Seconds a diagnostic session may wait for approval before it expires.")
    var sessionApprovalTtl = ServerConfig().sessionApprovalTTL
    @Option(help: "Unfinished commands per device before proposals get 429 queue_full.")
    var deviceQueueCap = ServerConfig().deviceQueueCap
    @Option(help: "Seconds between reaper passes (lapsed leases, dead letters, expiries).")
    var reaperInterval = ServerConfig().reaperInterval
    @Option(help: "Seconds between checks of every unfinished command record against the hot queue.")
    var queueReconcileInterval = ServerConfig().queueReconcileInterval
    @Option(help: "Log lines (and status reports) per second one device socket may send (4 s worth in a burst).")
    var deviceLogRate = ServerConfig().deviceLogRate
    @Option(help: "Newest events each room's history keeps (what subscribe with since can replay).")
    var roomHistoryLength = ServerConfig().roomHistoryLength
    @Option(help: "Seconds a room's history lives after its last event.")
    var roomHistoryTtl = ServerConfig().roomHistoryTTL
    @Option(help: "Bytes of room events waiting for a slow subscriber before its oldest execution.log events are dropped.")
    var subscriberSoftLimit = ServerConfig().subscriberSoftLimit
    @Option(help: "Bytes of undroppable room events waiting for a slow subscriber before it is closed (4008 slow_consumer).")
    var subscriberHardLimit = ServerConfig().subscriberHardLimit

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got \(logLevel)")
        }
        do { try makeConfig().validate() } catch { throw ValidationError(error.message) }
    }

    func makeConfig() -> ServerConfig {
        var c = ServerConfig()
        c.host = host
        c.port = port
        c.tlsPort = tlsPort
        c.tlsCertificateFile = tlsCert
        c.tlsPrivateKeyFile = tlsKey
        c.loops = loops
        c.pinCPUs = pinCpus
        c.maxConnections = maxConnections
        c.maxRequestLineBytes = maxRequestLineBytes
        c.maxHeaderBytes = maxHeaderBytes
        c.maxHeaderCount = maxHeaderCount
        c.maxBodyBytes = maxBodyBytes
        c.maxPipelinedRequests = maxPipelinedRequests
        c.requestHeadTimeout = requestHeadTimeout
        c.requestBodyTimeout = requestBodyTimeout
        c.keepAliveTimeout = keepAliveTimeout
        c.writeTimeout = writeTimeout
        c.shutdownGracePeriod = shutdownGracePeriod
        c.redisURL = redisUrl
        c.postgresURL = postgresUrl
        c.dataDirectory = dataDir
        c.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        c.accessLog = accessLog
        c.supabaseURL = supabaseUrl
        c.supabaseJWKSFile = supabaseJwksFile
        c.supabaseJWTSecret = supabaseJwtSecret
        c.supabaseCAFile = supabaseCaFile
        c.adminToken = adminToken
        c.hashKey = hashKey
        c.deviceTokenTTL = deviceTokenTtl
        c.activationCodeTTL = activationCodeTtl
        c.authFailuresPerMinutePerIP = authFailuresPerMinutePerIp
        c.requestsPerMinute = requestsPerMinute
        c.jwtLeeway = jwtLeeway
        c.customerAuthDeadline = customerAuthDeadline
        if let nodeId { c.nodeID = nodeId }
        c.presenceTTL = presenceTtl
        c.sessionApprovalTTL = sessionApprovalTtl
        c.deviceQueueCap = deviceQueueCap
        c.reaperInterval = reaperInterval
        c.queueReconcileInterval = queueReconcileInterval
        c.deviceLogRate = deviceLogRate
        c.roomHistoryLength = roomHistoryLength
        c.roomHistoryTTL = roomHistoryTtl
        c.subscriberSoftLimit = subscriberSoftLimit
        c.subscriberHardLimit = subscriberHardLimit
        return c
    }

    func run() throws {
        let config = makeConfig()
        let sink = LogSink.standardError
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: config.logLevel, sink: sink) }
        let logger = Logger(label: "devicehub")
        // Block the signals in every thread before any starts; the main thread takes them
        // synchronously below, so no handler runs on a loop thread.
        SignalWaiter.blockInAllThreads()
        let server: HubServer
        do {
            server = try HubServer(config: config, logger: logger, accessLogger: Logger(label: "access"))
            try server.start()
        } catch {
            logger.critical("start-up failed", metadata: ["error": .string("\(error)")])
            throw ExitCode(1)
        }
        while true {
            let sig = SignalWaiter.wait()
            if sig == SIGHUP {
                server.reloadTLS()
                continue
            }
            logger.info("signal received; draining (a second signal exits at once)", metadata: ["signal": .stringConvertible(sig)])
            // A second SIGTERM/SIGINT during the drain exits immediately.
            Thread.detachNewThread {
                while true {
                    let again = SignalWaiter.wait()
                    if again == SIGHUP { continue }
                    logger.warning("second signal: exiting now")
                    Foundation.exit(1)
                }
            }
            // Exit 0 either way: connections still open at the end of the grace period were
            // closed on purpose.
            server.drain()
            return
        }
    }
}
