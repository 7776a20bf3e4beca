import HubHTTP
import HubIO
import HubTelemetry
import Logging
import Synchronization

/// A low-level route handler: answer through the responder, now or later (from any thread).
/// For the few routes that never wait (operations endpoints, upgrades to a socket that needs no
/// credentials): no task is created for them.
public typealias RouteHandler = (RequestContext, Responder) -> Void

/// An application route handler. It runs in a task whose preferred executor is the
/// connection's event loop, so everything after an `await` resumes on that loop. Thrown
/// errors become problem+json in one place (`HTTPApplication.problemResponse`).
public typealias AsyncRouteHandler = @Sendable (HTTPRequest, RequestContext) async throws -> Response

/// One registered route: its pattern (the metrics label), handler and latency histogram.
final class Route {
    enum Handler {
        case callback(RouteHandler)
        case async(RouteGuard, AsyncRouteHandler)
    }
    let pattern: String
    let index: Int
    let handler: Handler
    let duration: Histogram

    init(pattern: String, index: Int, handler: Handler, duration: Histogram) {
        self.pattern = pattern
        self.index = index
        self.handler = handler
        self.duration = duration
    }
}

/// The HTTP side of the hub, shared by every connection: routes, limits, logging and metrics.
/// Routes are added before the server starts and never change after, so loops read them
/// without synchronisation.
public final class HTTPApplication: @unchecked Sendable {
    public let config: ServerConfig
    public let registry: MetricsRegistry
    public let logger: Logger
    let accessLogger: Logger
    private(set) var router = Router<Route>()
    private var routes: [Route] = []
    let unmatched: Route
    /// Set at SIGTERM: connections finish what is in flight and close; `/readyz` says 503.
    public let draining = Atomic<Bool>(false)
    /// Per-loop state (date cache, id generator, metric caches), indexed by loop.
    var loopContexts: [LoopContext] = []
    let requestsInFlight: Gauge
    /// Resolves credentials for guarded routes; set by the identity wiring before start.
    /// Without one, every guarded route answers 401.
    public var authenticator: (any RequestAuthenticator)?
    /// The guard's rate-limit stage; nil: no request rate limits.
    public var rateLimiter: (any RequestRateLimiter)?

    public init(config: ServerConfig, registry: MetricsRegistry, logger: Logger, accessLogger: Logger) {
        self.config = config
        self.registry = registry
        self.logger = logger
        self.accessLogger = accessLogger
        requestsInFlight = registry.gauge("devicehub_http_requests_in_flight", help: "HTTP requests received and not yet answered.")
        unmatched = Route(pattern: "unmatched", index: 0, handler: .callback({ _, _ in }),
                          duration: registry.histogram("devicehub_http_request_duration_seconds", help: "Time from a request's complete head to its response being queued.", labels: [("route", "unmatched")]))
        routes.append(unmatched)
    }

    /// Adds a low-level route; `pattern` segments starting with `:` are parameters.
    public func route(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping RouteHandler) {
        add(method, pattern, .callback(handler))
    }

    /// Adds an application route: `guard` runs first (credentials → `ctx.principal`, API key
    /// scope, rate limit), then `handler`, on the connection's loop.
    public func route(_ method: HTTPMethod, _ pattern: String, guard: RouteGuard, _ handler: @escaping AsyncRouteHandler) {
        add(method, pattern, .async(`guard`, handler))
    }

    /// Every route added, as (method, pattern): what `protocol/openapi.yaml` must describe.
    public private(set) var routeTable: [(method: HTTPMethod, pattern: String)] = []

    private func add(_ method: HTTPMethod, _ pattern: String, _ handler: Route.Handler) {
        routeTable.append((method, pattern))
        let entry: Route
        if let existing = routes.first(where: { $0.pattern == pattern }) {
            entry = Route(pattern: pattern, index: existing.index, handler: handler, duration: existing.duration)
        } else {
            entry = Route(pattern: pattern, index: routes.count, handler: handler,
                          duration: registry.histogram("devicehub_http_request_duration_seconds", help: "Time from a request's complete head to its response being queued.", labels: [("route", pattern)]))
            routes.append(entry)
        }
        router.add(method, pattern, entry)
    }

    func prepareLoops(_ loops: [EventLoop]) {
        loopContexts = loops.map { LoopContext(loop: $0, application: self) }
    }

    /// Counts a response (loop thread; series created once per route and status).
    func recordResponse(route: Route, status: Int, nanoseconds: Int, loop: Int) {
        let ctx = loopContexts[loop]
        let key = route.index &* 1000 &+ status
        let counter: Counter
        if let c = ctx.requestCounters[key] {
            counter = c
        } else {
            counter = registry.counter("devicehub_http_requests_total", help: "HTTP responses by route and status.",
                                       labels: [("route", route.pattern), ("status", String(status))])
            ctx.requestCounters[key] = counter
        }
        counter.increment(shard: loop)
        route.duration.observe(nanoseconds: nanoseconds, shard: loop)
    }
}

/// State a loop keeps for HTTP: touched only by that loop's thread.
final class LoopContext {
    let loop: EventLoop
    var date = HTTPDate()
    var requestIDs: RequestIDGenerator
    var requestCounters: [Int: Counter] = [:]

    init(loop: EventLoop, application: HTTPApplication) {
        self.loop = loop
        requestIDs = RequestIDGenerator(loop: loop.index)
    }

    /// The `Date` header bytes, recomputed once per second.
    func currentDate() -> HTTPDate {
        date.update(unixSeconds: unixSeconds())
        return date
    }
}
