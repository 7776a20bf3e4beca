import Foundation
import HubHTTP
import HubIO

/// What a route handler answers: status, headers and a complete body (hub payloads are small
/// JSON documents; streaming is the WebSocket's job).
public struct Response {
    public var status: Int { didSet { prepared = nil } }
    public var headers: HTTPHeaders { didSet { prepared = nil } }
    public var body: [UInt8]
    /// The head encoded once, for responses sent many times (see `prepare()`).
    private(set) var prepared: PreparedResponseHead?
    /// Close the connection after this response even if the client wants keep-alive.
    public var closeConnection = false
    /// For `101 Switching Protocols`: what takes the connection over once the response is out.
    public var upgrade: ProtocolUpgrade?

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Encodes the head once now, so that sending this response again and again costs a
    /// copy rather than an encoding. For responses built once and kept (`/healthz`).
    public mutating func prepare() {
        prepared = PreparedResponseHead(HTTPResponseHead(status: status, headers: headers))
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

/// Hands a connection to another protocol after a 101 response (WebSocket).
public struct ProtocolUpgrade {
    /// Makes the new handler for the channel; `leftover` holds bytes the client sent after
    /// the upgrade request (its first frames), to be fed to the new handler.
    public var makeHandler: (_ channel: Channel) -> ChannelHandler

    public init(makeHandler: @escaping (_ channel: Channel) -> ChannelHandler) {
        self.makeHandler = makeHandler
    }
}

/// Completes one request from any thread. Responses of pipelined requests are written in
/// request order by the connection, whatever order handlers finish in; a second answer to the
/// same request is ignored. A value type: answering costs no allocation.
public struct Responder: @unchecked Sendable {
    /// Strong on purpose: a weak reference costs an atomic side-table operation per request,
    /// and a connection that closed ignores late answers (its pending list is empty).
    private let connection: HTTPConnection
    private let sequence: Int
    private let loop: EventLoop

    init(connection: HTTPConnection, sequence: Int, loop: EventLoop) {
        self.connection = connection
        self.sequence = sequence
        self.loop = loop
    }

    public func send(_ response: Response) {
        if loop.inLoop {
            connection.complete(sequence: sequence, response: response)
        } else {
            let target = self
            loop.execute { target.connection.complete(sequence: target.sequence, response: response) }
        }
    }
}
