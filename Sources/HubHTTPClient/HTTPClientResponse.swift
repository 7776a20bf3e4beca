import HubHTTP

/// A complete response: any status, with its headers and the decoded body.
public struct HTTPClientResponse: Equatable, Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// 2xx.
    public var isSuccess: Bool { (200..<300).contains(status) }

    /// The body decoded as UTF-8 (invalid sequences replaced), for messages and logs.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
