// Server side of the opening handshake (RFC 6455 §4.2): validate the upgrade request's headers
// and produce the 101 response's headers, or a rejection with an HTTP status and a stable code
// for problem+json. The caller has already checked `GET` and `HTTP/1.1` (and Host, which its
// HTTP parser requires), and writes the response.

/// What the server accepts in an opening handshake.
public struct HandshakePolicy: Sendable {
    /// Subprotocols the server speaks, in no particular order: the client's order decides
    /// (the first of the client's list that appears here is selected).
    public var subprotocols: [String] = []
    /// Refuse (400) a client that offers none of `subprotocols`. Off by default: a client that
    /// offered something we do not speak gets no Sec-WebSocket-Protocol and decides itself.
    public var requireSubprotocol = false
    /// Allowed `Origin` values (compared ASCII case-insensitively, e.g. "https://app.example");
    /// nil allows any. A request without Origin is always allowed: devices and other
    /// non-browser clients do not send one, and Origin only protects browsers' users.
    public var allowedOrigins: [String]?
    /// permessage-deflate policy; nil never negotiates it.
    public var deflate: PerMessageDeflate.Policy? = PerMessageDeflate.Policy()

    public init(subprotocols: [String] = [], requireSubprotocol: Bool = false, allowedOrigins: [String]? = nil,
                deflate: PerMessageDeflate.Policy? = PerMessageDeflate.Policy()) {
        self.subprotocols = subprotocols
        self.requireSubprotocol = requireSubprotocol
        self.allowedOrigins = allowedOrigins
        self.deflate = deflate
    }
}

/// An accepted handshake: the headers of the `101 Switching Protocols` response and what was
/// agreed, to configure the connection's reader and writer.
public struct HandshakeAccept: Sendable {
    /// Upgrade, Connection, Sec-WebSocket-Accept, and Sec-WebSocket-Protocol /
    /// Sec-WebSocket-Extensions when agreed.
    public var responseHeaders: [(name: String, value: String)]
    public var subprotocol: String?
    public var deflate: PerMessageDeflate.Parameters?
}

/// A refused handshake: answer with `status`, a problem+json body carrying `code`, and
/// `headers` (426 carries `Sec-WebSocket-Version: 13`, RFC 6455 §4.4).
public struct HandshakeRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    /// Stable snake_case code for clients to switch on.
    public var code: String
    public var detail: String
    public var headers: [(name: String, value: String)]

    public init(status: Int, code: String, detail: String, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
    }

    public static func == (a: HandshakeRejection, b: HandshakeRejection) -> Bool {
        a.status == b.status && a.code == b.code && a.detail == b.detail && a.headers.count == b.headers.count
            && zip(a.headers, b.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public var description: String { "\(status) \(code): \(detail)" }

    /// Every code this type produces, with its status (for docs and tests).
    public static let catalogue: [(code: String, status: Int)] = [
        ("websocket_upgrade_missing", 400), ("websocket_connection_missing", 400), ("websocket_version_unsupported", 426),
        ("websocket_key_invalid", 400), ("websocket_origin_forbidden", 403), ("websocket_subprotocol_unsupported", 400),
    ]
}

/// The opening handshake (RFC 6455 §4).
public enum WebSocketHandshake {
    /// The GUID every Sec-WebSocket-Accept is derived with (RFC 6455 §1.3).
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// base64(SHA-1(key + GUID)), the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
    public static func acceptValue(forKey key: String) -> String {
        var input = Array(key.utf8)
        input.append(contentsOf: guid.utf8)
        let digest = input.withUnsafeBytes { OpenSSLCrypto.sha1($0) }
        return Base64.encode(digest)
    }

    /// Whether a Sec-WebSocket-Key value is the base64 encoding of exactly 16 bytes
    /// (RFC 6455 §4.2.1 item 5): 24 characters ending in "==".
    public static func isValidKey(_ key: String) -> Bool {
        key.utf8.count == 24 && Base64.decode(key)?.count == 16
    }

    /// Validates an upgrade request's headers; see `HandshakePolicy` for the choices. Checks,
    /// in order: Upgrade contains the token "websocket"; Connection contains "upgrade";
    /// Sec-WebSocket-Version is 13 (426 otherwise, missing included); exactly one
    /// Sec-WebSocket-Key, base64 of 16 bytes; Origin allowed; subprotocol; extensions.
    public static func validate(headers: [(name: String, value: String)], policy: HandshakePolicy)
        -> Result<HandshakeAccept, HandshakeRejection> {
        let upgrade = values(of: "upgrade", in: headers)
        guard tokens(upgrade).contains(where: { $0.lowercased() == "websocket" }) else {
            return .failure(HandshakeRejection(status: 400, code: "websocket_upgrade_missing",
                                               detail: "request lacks the header Upgrade: websocket"))
        }
        guard tokens(values(of: "connection", in: headers)).contains(where: { $0.lowercased() == "upgrade" }) else {
            return .failure(HandshakeRejection(status: 400, code: "websocket_connection_missing",
                                               detail: "the Connection header does not contain the token upgrade"))
        }
        let versions = values(of: "sec-websocket-version", in: headers)
        guard versions.count == 1, trimmed(versions[0]) == "13" else {
            return .failure(HandshakeRejection(status: 426, code: "websocket_version_unsupported",
                                               detail: "only WebSocket protocol version 13 is supported",
                                               headers: [("Sec-WebSocket-Version", "13")]))
        }
        let keys = values(of: "sec-websocket-key", in: headers)
        guard keys.count == 1, isValidKey(trimmed(keys[0])) else {
            return .failure(HandshakeRejection(status: 400, code: "websocket_key_invalid",
                                               detail: "Sec-WebSocket-Key must be one base64 value of 16 bytes"))
        }
        let key = trimmed(keys[0])
        if let allowed = policy.allowedOrigins {
            let origins = values(of: "origin", in: headers)
            if let origin = origins.first {
                let given = trimmed(origin).lowercased()
                guard origins.count == 1, allowed.contains(where: { $0.lowercased() == given }) else {
                    return .failure(HandshakeRejection(status: 403, code: "websocket_origin_forbidden",
                                                       detail: "origin is not allowed"))
                }
            }
        }
        let offered = tokens(values(of: "sec-websocket-protocol", in: headers))
        let subprotocol = offered.first(where: { policy.subprotocols.contains($0) })
        if subprotocol == nil && policy.requireSubprotocol {
            return .failure(HandshakeRejection(status: 400, code: "websocket_subprotocol_unsupported",
                                               detail: "none of the offered subprotocols is supported"))
        }
        var response: [(name: String, value: String)] = [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", acceptValue(forKey: key)),
        ]
        if let subprotocol { response.append(("Sec-WebSocket-Protocol", subprotocol)) }
        var deflate: PerMessageDeflate.Parameters?
        if let deflatePolicy = policy.deflate,
           let (agreed, header) = PerMessageDeflate.negotiate(offers: values(of: "sec-websocket-extensions", in: headers),
                                                              policy: deflatePolicy) {
            deflate = agreed
            response.append(("Sec-WebSocket-Extensions", header))
        }
        return .success(HandshakeAccept(responseHeaders: response, subprotocol: subprotocol, deflate: deflate))
    }

    // MARK: - Header helpers (shared with the client handshake)

    /// All values of a header, by case-insensitive name, in order.
    static func values(of lowercaseName: String, in headers: [(name: String, value: String)]) -> [String] {
        headers.compactMap { $0.name.lowercased() == lowercaseName ? $0.value : nil }
    }

    /// Comma-separated list elements of several header values, trimmed, empty ones dropped.
    static func tokens(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { trimmed(String($0)) }
            .filter { !$0.isEmpty }
    }

    static func trimmed(_ s: String) -> String {
        var u = Substring(s)
        while let f = u.first, f == " " || f == "\t" { u.removeFirst() }
        while let l = u.last, l == " " || l == "\t" { u.removeLast() }
        return String(u)
    }
}
