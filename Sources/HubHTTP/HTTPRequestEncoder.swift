// Request serialization for the hub's HTTP client: the mirror of HTTPResponseEncoder, but
// validating instead of sanitizing, since its input comes from code, not from a peer.

/// A request that cannot be put on the wire as given.
public struct HTTPRequestEncodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var detail: String

    public init(_ detail: String) {
        self.detail = detail
    }

    public var description: String { detail }
}

/// Serializes an HTTP/1.1 request head and body.
///
/// Every byte of the method, target, field names and field values is checked against the
/// RFC 9110/9112 grammar and anything outside it is refused, not repaired: a CR or LF that
/// reached a field value (say, a token read from a file with its newline) would otherwise
/// split the request in two, and silently rewriting it would send something else than what
/// the caller asked for. Framing fields are the caller's to add (`Host`, `Content-Length`,
/// `Connection`); the encoder writes exactly the fields it is given, in order.
public enum HTTPRequestEncoder {
    /// `method SP target SP HTTP/1.1 CRLF`, the fields, CRLF, then `body`.
    public static func encode(method: HTTPMethod, target: String, headers: HTTPHeaders,
                              body: [UInt8]) throws(HTTPRequestEncodingError) -> [UInt8] {
        let name = method.name
        guard !name.isEmpty, name.utf8.allSatisfy(HTTPSyntax.isTchar) else {
            throw HTTPRequestEncodingError("method '\(name)' is not a token")
        }
        guard !target.isEmpty, target.utf8.allSatisfy(isTargetByte) else {
            throw HTTPRequestEncodingError("request target must be non-empty visible ASCII (percent-encode the rest)")
        }
        for field in headers.all {
            guard !field.name.isEmpty, field.name.utf8.allSatisfy(HTTPSyntax.isTchar) else {
                throw HTTPRequestEncodingError("header name '\(field.name)' is not a token")
            }
            guard !field.value.utf8.contains(where: HTTPSyntax.isForbiddenInValue) else {
                throw HTTPRequestEncodingError("value of header '\(field.name)' contains a control character")
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(64 + target.utf8.count + headers.all.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + body.count)
        out.append(contentsOf: name.utf8)
        out.append(ASCII.space)
        out.append(contentsOf: target.utf8)
        out.append(contentsOf: " HTTP/1.1\r\n".utf8)
        for field in headers.all {
            out.append(contentsOf: field.name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: field.value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: body)
        return out
    }

    /// Visible ASCII (no SP, no controls, no DEL, no obs-text).
    private static func isTargetByte(_ b: UInt8) -> Bool {
        b > ASCII.space && b < ASCII.del
    }
}
