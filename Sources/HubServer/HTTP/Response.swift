import Foundation
import HubHTTP
import HubIO

/// What a route handler answers: status, headers and a complete body (hub payloads are small
/// JSON documents; streaming is the WebSocket's job).
public struct Response {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Close the connection after this response even if the client wants keep-alive.
    public var closeConnection = false

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json<T: Encodable>(_ value: T, status: Int = 200) -> Response {
        var r = Response(status: status, body: JSONBody.encode(value))
        r.headers.add(name: "Content-Type", value: "application/json")
        return r
    }

    public static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> Response {
        var r = Response(status: status, body: Array(text.utf8))
        r.headers.add(name: "Content-Type", value: contentType)
        return r
    }

    /// An RFC 7807 problem document.
    public static func problem(_ problem: Problem) -> Response {
        var r = Response(status: problem.status, body: problem.jsonBytes())
        r.headers.add(name: "Content-Type", value: "application/problem+json")
        return r
    }
}

/// Completes one request, exactly once, from any thread. Responses of pipelined requests are
/// written in request order by the connection, whatever order handlers finish in.
public final class Responder: @unchecked Sendable {
    private weak var connection: HTTPConnection?
    private let sequence: Int
    private let loop: EventLoop
    private var done = false

    init(connection: HTTPConnection, sequence: Int, loop: EventLoop) {
        self.connection = connection
        self.sequence = sequence
        self.loop = loop
    }

    public func send(_ response: Response) {
        if loop.inLoop {
            complete(response)
        } else {
            loop.execute { self.complete(response) }
        }
    }

    private func complete(_ response: Response) {
        guard !done else { return }
        done = true
        connection?.complete(sequence: sequence, response: response)
    }
}
