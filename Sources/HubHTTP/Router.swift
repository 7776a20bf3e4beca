// Method + path routing over a segment trie.

/// The outcome of routing a request.
public enum RouteMatch<Handler> {
    /// A route matched. `params` maps each `:name` of the pattern to its (still
    /// percent-encoded) path segment; `pattern` is the route as registered, for metrics labels
    /// and logs that must not explode in cardinality.
    case found(Handler, params: [String: String], pattern: String)
    /// No route has this path.
    case notFound
    /// Routes have this path, but none for this method. `allow` lists their methods, sorted,
    /// with HEAD whenever GET is present — ready for the `Allow` header of a 405.
    case methodNotAllowed(allow: [String])
}

extension RouteMatch: Sendable where Handler: Sendable {}

/// Maps (method, path) to handlers, with patterns like `/api/v1/customer/devices/:id/status`.
///
/// Patterns are `/`-separated segments; a segment `:name` matches any one non-empty segment and
/// captures it. When several patterns fit a path, literal segments win over parameters, segment
/// by segment from the left (`/devices/search` beats `/devices/:id`), with backtracking, so a
/// literal prefix that leads nowhere does not hide a parameter route that matches. Matching is
/// exact: no trailing-slash redirects, no percent-decoding (an encoded `%2F` never splits a
/// segment), so what the router matched is what a handler sees.
///
/// HEAD is served by GET routes unless a HEAD route exists (RFC 9110 §9.3.2); the encoder's
/// `headOnly` drops the body.
///
/// Only the handler table is generic. The trie and the matching live in the non-generic
/// `RouteTrie`, because a generic type used from another module runs unspecialised, paying a
/// metadata lookup per call; this way the per-request work is concrete code working on the
/// path's UTF-8 bytes.
public struct Router<Handler> {
    private var trie = RouteTrie()
    private var handlers: [Handler] = []

    public init() {}

    /// Registers `handler` for `method` and `pattern`. Registering the same method and pattern
    /// shape again replaces the earlier handler (last registration wins).
    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: Handler) {
        if let replaced = trie.insert(method, pattern, handlerIndex: handlers.count) {
            handlers[replaced] = handler
        } else {
            handlers.append(handler)
        }
    }

    /// Finds the handler for `method` and `path` (the request's path, without query).
    public func match(_ method: HTTPMethod, path: String) -> RouteMatch<Handler> {
        switch trie.match(method, path: path) {
        case .found(let index, let params, let pattern):
            return .found(handlers[index], params: params, pattern: pattern)
        case .notFound:
            return .notFound
        case .methodNotAllowed(let allow):
            return .methodNotAllowed(allow: allow)
        }
    }

    /// Every registered (method, pattern), in registration order of their path shapes.
    public var routes: [(method: HTTPMethod, pattern: String)] { trie.routes }
}

extension Router: Sendable where Handler: Sendable {}

/// The non-generic segment trie behind `Router`. Nodes live in one array with index links:
/// a value type, cheap to copy into each event-loop thread, no reference counting per node.
struct RouteTrie: Sendable {
    struct Route: Sendable {
        var method: HTTPMethod
        var handlerIndex: Int
        var paramNames: [String]
        var pattern: String
    }

    struct Node: Sendable {
        /// Literal children as UTF-8 bytes, searched linearly: real APIs have a handful per
        /// level, for which comparing short byte arrays beats hashing the segment.
        var literals: [(segment: [UInt8], node: Int)] = []
        var parameter: Int?
        var routes: [Route] = []
    }

    enum Match {
        case found(handlerIndex: Int, params: [String: String], pattern: String)
        case notFound
        case methodNotAllowed(allow: [String])
    }

    private var nodes: [Node] = [Node()]

    /// Adds a route; returns the handler index it replaced, if the same method and pattern
    /// shape was registered before.
    mutating func insert(_ method: HTTPMethod, _ pattern: String, handlerIndex: Int) -> Int? {
        var node = 0
        var names: [String] = []
        for segment in Self.segments(pattern) {
            if segment.first == ":" {
                names.append(String(segment.dropFirst()))
                if let child = nodes[node].parameter {
                    node = child
                } else {
                    nodes.append(Node())
                    nodes[node].parameter = nodes.count - 1
                    node = nodes.count - 1
                }
            } else {
                let bytes = Array(segment.utf8)
                if let child = nodes[node].literals.first(where: { $0.segment == bytes })?.node {
                    node = child
                } else {
                    nodes.append(Node())
                    nodes[node].literals.append((bytes, nodes.count - 1))
                    node = nodes.count - 1
                }
            }
        }
        if let existing = nodes[node].routes.firstIndex(where: { $0.method == method }) {
            let replaced = nodes[node].routes[existing].handlerIndex
            nodes[node].routes[existing] = Route(method: method, handlerIndex: replaced, paramNames: names, pattern: pattern)
            return replaced
        }
        nodes[node].routes.append(Route(method: method, handlerIndex: handlerIndex, paramNames: names, pattern: pattern))
        return nil
    }

    /// Splits a pattern `/a/b/c` into `a`, `b`, `c` (`/` alone has none).
    private static func segments(_ pattern: String) -> [Substring] {
        var trimmed = Substring(pattern)
        if trimmed.first == "/" { trimmed = trimmed.dropFirst() }
        if trimmed.isEmpty { return [] }
        return trimmed.split(separator: "/", omittingEmptySubsequences: false)
    }

    func match(_ method: HTTPMethod, path: String) -> Match {
        var path = path
        return path.withUTF8 { bytes in
            guard bytes.first == ASCII.slash else { return .notFound }
            var search = Search(nodes: nodes, path: bytes, method: method)
            // Segments are byte ranges of the path; "/" has none, "/a/" has "a" and "".
            let first = bytes.count == 1 ? -1 : 1
            if let route = search.visit(node: 0, from: first) {
                var params: [String: String] = [:]
                if !route.paramNames.isEmpty {
                    params.reserveCapacity(route.paramNames.count)
                    for (name, range) in zip(route.paramNames, search.captures) {
                        params[name] = HTTPSyntax.string(bytes, range.start, range.end)
                    }
                }
                return .found(handlerIndex: route.handlerIndex, params: params, pattern: route.pattern)
            }
            guard search.pathMatched else { return .notFound }
            return .methodNotAllowed(allow: search.allowed.sorted())
        }
    }

    /// Depth-first search state: literal child before parameter child, with backtracking.
    /// Nodes whose path matches but whose methods do not are remembered (`allowed`) so that a
    /// miss can be told apart as 405 with the union of methods that would have matched.
    private struct Search {
        let nodes: [Node]
        let path: UnsafeBufferPointer<UInt8>
        let method: HTTPMethod
        var captures: [(start: Int, end: Int)] = []
        var allowed: Set<String> = []
        var pathMatched = false

        init(nodes: [Node], path: UnsafeBufferPointer<UInt8>, method: HTTPMethod) {
            self.nodes = nodes
            self.path = path
            self.method = method
        }

        /// Matches the segments starting at byte `from` (-1: none left) below `node`.
        mutating func visit(node: Int, from: Int) -> Route? {
            guard from >= 0 else { return routeForMethod(at: node) }
            var end = from
            while end < path.count && path[end] != ASCII.slash { end &+= 1 }
            let next = end == path.count ? -1 : end &+ 1
            let length = end &- from

            for literal in nodes[node].literals where literal.segment.count == length {
                let equal = literal.segment.withUnsafeBufferPointer { seg in
                    var i = 0
                    while i < length && seg[i] == path[from &+ i] { i &+= 1 }
                    return i == length
                }
                if equal, let found = visit(node: literal.node, from: next) { return found }
            }
            if let child = nodes[node].parameter, length > 0 {
                captures.append((from, end))
                if let found = visit(node: child, from: next) { return found }
                captures.removeLast()
            }
            return nil
        }

        private mutating func routeForMethod(at node: Int) -> Route? {
            let routes = nodes[node].routes
            guard !routes.isEmpty else { return nil }
            if let route = routes.first(where: { $0.method == method }) { return route }
            if method == .head, let route = routes.first(where: { $0.method == .get }) { return route }
            pathMatched = true
            for route in routes {
                allowed.insert(route.method.name)
                if route.method == .get { allowed.insert("HEAD") }
            }
            return nil
        }
    }

    var routes: [(method: HTTPMethod, pattern: String)] {
        nodes.flatMap { $0.routes.map { ($0.method, $0.pattern) } }
    }
}
