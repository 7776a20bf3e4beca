// Client side of the opening handshake (RFC 6455 §4.1): a fresh random key, the request's
// headers, and the checks a client must make on the server's response before it may send or
// read a single frame (§4.1 "the client MUST _Fail the WebSocket Connection_" items 1–6).
// For the hub's own tools (load tester, agents) and for tests.

/// One client handshake attempt. Keep it until the response arrives: it remembers the key,
/// the offered subprotocols and the permessage-deflate offer the response is checked against.
public struct WebSocketClientHandshake: Sendable {
    /// Sec-WebSocket-Key: base64 of 16 random bytes.
    public let key: String
    public let subprotocols: [String]
    /// The permessage-deflate wishes offered, or nil for no offer.
    public let deflateOffer: PerMessageDeflate.Parameters?

    /// What the server agreed to.
    public struct Accepted: Equatable, Sendable {
        public var subprotocol: String?
        public var deflate: PerMessageDeflate.Parameters?
    }

    /// Why the server's response is unacceptable; the client closes the TCP connection.
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        public var detail: String
        public var description: String { detail }
    }

    /// - Parameters:
    ///   - key: a fixed key for tests; by default 16 fresh random bytes (§4.1 requires a new
    ///     random key per connection).
    ///   - subprotocols: offered in order of preference.
    ///   - deflate: permessage-deflate wishes to offer, or nil.
    public init(key: String? = nil, subprotocols: [String] = [], deflate: PerMessageDeflate.Parameters? = PerMessageDeflate.Parameters()) {
        if let key {
            self.key = key
        } else {
            var nonce = [UInt8](repeating: 0, count: 16)
            nonce.withUnsafeMutableBytes { OpenSSLCrypto.randomBytes($0) }
            self.key = Base64.encode(nonce)
        }
        self.subprotocols = subprotocols
        self.deflateOffer = deflate
    }

    /// Headers for the `GET <path> HTTP/1.1` upgrade request (the caller writes the request
    /// line). `host` is the Host value (with the port when not the default); `origin` is only
    /// for clients acting for a web page.
    public func requestHeaders(host: String, origin: String? = nil) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13"),
        ]
        if let origin { headers.append(("Origin", origin)) }
        if !subprotocols.isEmpty { headers.append(("Sec-WebSocket-Protocol", subprotocols.joined(separator: ", "))) }
        if let deflateOffer { headers.append(("Sec-WebSocket-Extensions", PerMessageDeflate.clientOffer(deflateOffer))) }
        return headers
    }

    /// Checks the server's response: status 101, Upgrade: websocket, Connection: upgrade, the
    /// exact Sec-WebSocket-Accept for our key, a subprotocol only from our list, and extensions
    /// only within our offer.
    public func validateResponse(status: Int, headers: [(name: String, value: String)]) -> Result<Accepted, Failure> {
        guard status == 101 else { return .failure(Failure(detail: "server answered \(status), not 101")) }
        let upgrade = WebSocketHandshake.values(of: "upgrade", in: headers)
        guard WebSocketHandshake.tokens(upgrade).contains(where: { $0.lowercased() == "websocket" }) else {
            return .failure(Failure(detail: "response lacks Upgrade: websocket"))
        }
        let connection = WebSocketHandshake.values(of: "connection", in: headers)
        guard WebSocketHandshake.tokens(connection).contains(where: { $0.lowercased() == "upgrade" }) else {
            return .failure(Failure(detail: "response lacks Connection: upgrade"))
        }
        let accepts = WebSocketHandshake.values(of: "sec-websocket-accept", in: headers)
        guard accepts.count == 1, WebSocketHandshake.trimmed(accepts[0]) == WebSocketHandshake.acceptValue(forKey: key) else {
            return .failure(Failure(detail: "Sec-WebSocket-Accept does not match the key"))
        }
        var accepted = Accepted()
        let protocols = WebSocketHandshake.tokens(WebSocketHandshake.values(of: "sec-websocket-protocol", in: headers))
        if !protocols.isEmpty {
            guard protocols.count == 1, subprotocols.contains(protocols[0]) else {
                return .failure(Failure(detail: "server selected a subprotocol that was not offered"))
            }
            accepted.subprotocol = protocols[0]
        }
        let extensions = WebSocketHandshake.values(of: "sec-websocket-extensions", in: headers)
        if !extensions.isEmpty {
            guard let offer = deflateOffer else {
                return .failure(Failure(detail: "server selected an extension that was not offered"))
            }
            switch PerMessageDeflate.validateResponse(extensions, offered: offer) {
            case .success(let parameters): accepted.deflate = parameters
            case .failure(let error): return .failure(Failure(detail: error.detail))
            }
        }
        return .success(accepted)
    }
}

// MARK: - Whole request and response head (for the connection shell)

extension WebSocketHandshake {
    /// A client's upgrade request, ready to write, and the handshake state to check the
    /// response against.
    public struct ClientRequest: Sendable {
        public let handshake: WebSocketClientHandshake
        /// `GET <path> HTTP/1.1`, the headers and the blank line.
        public let bytes: [UInt8]
    }

    /// Builds the complete upgrade request. `path` is sent as the request target with bytes
    /// outside visible ASCII percent-encoded (so it can never break the request line);
    /// `extraHeaders` whose name is not a token or whose value holds CR, LF or NUL are left out
    /// for the same reason, as are any that would repeat the handshake's own headers.
    public static func clientRequest(host: String, path: String = "/", subprotocols: [String] = [], offerDeflate: Bool = false,
                                     deflate: PerMessageDeflate.Parameters = PerMessageDeflate.Parameters(),
                                     origin: String? = nil, extraHeaders: [(String, String)] = [],
                                     key: String? = nil) -> ClientRequest {
        let handshake = WebSocketClientHandshake(key: key, subprotocols: subprotocols, deflate: offerDeflate ? deflate : nil)
        var target: [UInt8] = []
        for byte in path.utf8 {
            if byte > 0x20 && byte < 0x7F {
                target.append(byte)
            } else {
                let digits = Array("0123456789ABCDEF".utf8)
                target += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 15)]]
            }
        }
        if target.first != UInt8(ascii: "/") { target.insert(UInt8(ascii: "/"), at: 0) }
        var text = "GET " + String(decoding: target, as: UTF8.self) + " HTTP/1.1\r\n"
        var headers = handshake.requestHeaders(host: host, origin: origin)
        let reserved = Set(headers.map { $0.name.lowercased() })
        for (name, value) in extraHeaders {
            let bad = value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
            guard WebSocketExtensionOffer.isToken(Array(name.utf8)), !bad, !reserved.contains(name.lowercased()) else { continue }
            headers.append((name: name, value: value))
        }
        for (name, value) in headers { text += name + ": " + value + "\r\n" }
        text += "\r\n"
        return ClientRequest(handshake: handshake, bytes: Array(text.utf8))
    }

    /// Checks a response head (status line and header lines, with or without the final blank
    /// line) against the request: `HTTP/1.1 101`, then everything
    /// `WebSocketClientHandshake.validateResponse` checks.
    public static func verifyResponse(head: [UInt8], request: ClientRequest)
        -> Result<WebSocketClientHandshake.Accepted, WebSocketClientHandshake.Failure> {
        var lines = crlfLines(head)
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let statusLine = lines.first else { return .failure(.init(detail: "empty response")) }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]), parts[1].count == 3 else {
            return .failure(.init(detail: "malformed status line"))
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return .failure(.init(detail: "malformed header line")) }
            let name = String(line[..<colon])
            guard WebSocketExtensionOffer.isToken(Array(name.utf8)) else { return .failure(.init(detail: "malformed header name")) }
            headers.append((name: name, value: trimmed(String(line[line.index(after: colon)...]))))
        }
        return request.handshake.validateResponse(status: status, headers: headers)
    }
}

/// Lines of a head, split at LF with a preceding CR dropped (a bare LF also ends a line: lenient
/// for a client reading a server's head). Bytes, not Characters: "\r\n" is one Character.
private func crlfLines(_ head: [UInt8]) -> [String] {
    head.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
        String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
    }
}
