import HubAuth
import HubHTTP
import HubIO
import HubStore
import Logging

/// What happens to a request on a guarded route, in order, on the connection's loop:
/// authenticate (guard) → rate limit → handler → response; any error thrown along the way
/// becomes a problem document here and nowhere else.
extension HTTPApplication {
    /// Starts the route's task. Its preferred executor is the loop, so the handler and
    /// everything after each `await` in it run on the loop's thread; the response is written
    /// from there without a hop.
    func runAsync(_ guardRule: RouteGuard, _ handler: @escaping AsyncRouteHandler, context: RequestContext, responder: Responder) {
        Task(executorPreference: context.loop) { [self] in
            let response: Response
            do {
                try await admit(guardRule, context)
                response = try await handler(context.request, context)
            } catch {
                response = problemResponse(for: error, context: context)
            }
            responder.send(response)
        }
    }

    /// The guard: credentials into `context.principal`, then the rate limit.
    private func admit(_ rule: RouteGuard, _ context: RequestContext) async throws {
        if !rule.accepts.isEmpty {
            guard let authenticator else { throw Problem.unauthenticated("this hub has no credentials configured for this route") }
            context.principal = try await authenticator.authenticate(context.request, context: context, guard: rule)
        }
        if rule.rateLimit == .perPrincipal, let rateLimiter {
            try await rateLimiter.admit(context.principal, context: context)
        }
    }

    /// The one place an error becomes an HTTP answer:
    /// - a `Problem` is sent as it is (with `Retry-After` when it carries one);
    /// - a `StoreError` maps to 503/400/409/500 (`StoreProblems.swift`);
    /// - anything else is a bug: 500 with the request id, the error in the log only.
    func problemResponse(for error: any Error, context: RequestContext) -> Response {
        switch error {
        case let problem as Problem:
            var p = problem
            p.requestID = context.requestID
            if p.instance == nil { p.instance = context.request.path }
            var r = Response.problem(p)
            if let seconds = p.retryAfterSeconds { r.headers.add(name: "Retry-After", value: String(seconds)) }
            if p.status == 401 { r.headers.add(name: "WWW-Authenticate", value: "Bearer") }
            return r
        case let store as StoreError:
            return context.problem(store)
        default:
            context.logger.error("unhandled error in handler", metadata: ["error": .string(String(reflecting: error))])
            return context.problem(500, "internal_error", "internal error; the log line with this request_id has details")
        }
    }
}
