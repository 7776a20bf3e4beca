import HubAuth
import HubHTTP
import HubIO
import Logging

/// Everything a route handler gets about one request.
///
/// `@unchecked Sendable`: a context is created on its connection's loop and touched only
/// there: callback handlers run on the loop, and async handlers run in a task whose preferred
/// executor is that loop (nonisolated code after every `await` resumes on it). A handler that
/// hands the context to another executor must not mutate it there.
public final class RequestContext: @unchecked Sendable {
    public let request: HTTPRequest
    /// Path parameters by name (`:id` → `params["id"]`).
    public let params: [String: String]
    /// The matched route pattern (`/api/v1/...`), or `unmatched`.
    public let route: String
    /// Echoed in `X-Request-ID`, in problem documents and on every log line of this request.
    public let requestID: String
    /// The loop the request runs on; complete asynchronous work back on it.
    public let loop: EventLoop
    /// Who is calling, set by the route's guard (`.anonymous` on unguarded routes).
    public internal(set) var principal: Principal = .anonymous
    /// The client's address as `ip:port` (the TCP peer; a proxy's address behind one).
    public let peer: String
    private let baseLogger: Logger

    // In-flight bookkeeping of the connection, kept here so that a request costs one object
    // (a separate struct in the connection's queue was copied, with all its strings, several
    // times per request).
    let sequence: Int
    let routeEntry: Route
    let startedAt: UInt64
    var response: Response?

    init(request: HTTPRequest, params: [String: String], route: Route, requestID: String, loop: EventLoop, logger: Logger, sequence: Int, peer: String) {
        self.peer = peer
        self.request = request
        self.params = params
        self.route = route.pattern
        self.routeEntry = route
        self.requestID = requestID
        self.loop = loop
        self.baseLogger = logger
        self.sequence = sequence
        self.startedAt = loop.now
    }

    /// The client's IP address without the port (rate limits and audit per IP).
    public var clientIP: String { Self.ip(of: peer) }

    /// The IP part of a peer address: `[::1]:443` or `127.0.0.1:5000`.
    static func ip(of peer: String) -> String {
        if peer.hasPrefix("["), let end = peer.firstIndex(of: "]") { return String(peer[peer.index(after: peer.startIndex)..<end]) }
        if let colon = peer.lastIndex(of: ":") { return String(peer[..<colon]) }
        return peer
    }

    /// The JSON body decoded, or a thrown problem (415 or 400): for async handlers.
    public func json<T: Decodable>(_ type: T.Type) throws(Problem) -> T {
        switch decodeJSON(type) {
        case .success(let value): return value
        case .failure(let problem): throw problem
        }
    }

    /// A logger whose lines carry this request's id. Built on first use: most requests never log
    /// beyond the access line.
    public lazy var logger: Logger = {
        var l = baseLogger
        l[metadataKey: "request_id"] = .string(requestID)
        return l
    }()

    /// A problem document for this request (its id and path filled in).
    public func problem(_ status: Int, _ code: String, _ detail: String? = nil) -> Response {
        var p = Problem(status: status, code: code, detail: detail)
        p.requestID = requestID
        p.instance = request.path
        return .problem(p)
    }

    /// Decodes a JSON body, or gives the problem response to send (415 or 400).
    public func decodeJSON<T: Decodable>(_ type: T.Type) -> Result<T, Problem> {
        if let ct = request.headers["Content-Type"], !ct.lowercased().hasPrefix("application/json") {
            var p = Problem(status: 415, code: "unsupported_media_type", detail: "send application/json")
            p.requestID = requestID
            return .failure(p)
        }
        do {
            return .success(try JSONBody.decode(type, from: request.body))
        } catch {
            var p = error
            p.requestID = requestID
            return .failure(p)
        }
    }
}
