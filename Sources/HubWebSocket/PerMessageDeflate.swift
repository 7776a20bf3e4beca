// permessage-deflate negotiation (RFC 7692 §5, §7.1), both sides.
//
// Server: walk the client's offers in order, decline the malformed ones (unknown parameter,
// duplicate parameter, missing or bad value — §7.1 "MUST decline"), accept the first good one
// adjusted by the server's policy, and answer with exactly what was agreed.
//
// Window bits of 8. zlib's deflate refuses an 8-bit window for raw streams. Receiving is no
// problem (a larger inflate window decodes anything a smaller one would). Sending: an offer with
// server_max_window_bits=8 is ACCEPTED with server_max_window_bits=8 in the response (§7.1.2.1
// only allows a value ≤ the offered one, so answering 9 would make a compliant client fail the
// connection) and the deflater runs with 9 bits: zlib never emits a distance above
// 512 − 262 = 250 bytes with a 9-bit window, which an 8-bit (256-byte) window decodes. See
// ZlibDeflater.effectiveWindowBits. `Parameters` keeps the agreed 8.

/// RFC 7692 permessage-deflate: parameters, negotiation and the client's offer.
public enum PerMessageDeflate {
    /// The extension token.
    public static let extensionName = "permessage-deflate"

    /// Agreed parameters of one connection, named as on the wire. "server" is the direction
    /// server → client, whatever this end's role.
    public struct Parameters: Equatable, Hashable, Sendable {
        /// The server resets its compressor after every message (§7.1.1.1).
        public var serverNoContextTakeover: Bool
        /// The client resets its compressor after every message (§7.1.1.2).
        public var clientNoContextTakeover: Bool
        /// The server compresses with at most 2^bits bytes of window, 8...15 (§7.1.2.1).
        public var serverMaxWindowBits: Int
        /// The client compresses with at most 2^bits bytes of window, 8...15 (§7.1.2.2).
        public var clientMaxWindowBits: Int

        public init(serverNoContextTakeover: Bool = false, clientNoContextTakeover: Bool = false,
                    serverMaxWindowBits: Int = 15, clientMaxWindowBits: Int = 15) {
            precondition((8...15).contains(serverMaxWindowBits) && (8...15).contains(clientMaxWindowBits))
            self.serverNoContextTakeover = serverNoContextTakeover
            self.clientNoContextTakeover = clientNoContextTakeover
            self.serverMaxWindowBits = serverMaxWindowBits
            self.clientMaxWindowBits = clientMaxWindowBits
        }

        /// Whether the given role's outgoing messages may refer to earlier ones.
        func sendsWithContextTakeover(_ role: WebSocketRole) -> Bool {
            role == .server ? !serverNoContextTakeover : !clientNoContextTakeover
        }
        func sendWindowBits(_ role: WebSocketRole) -> Int { role == .server ? serverMaxWindowBits : clientMaxWindowBits }
        func receivesWithContextTakeover(_ role: WebSocketRole) -> Bool {
            sendsWithContextTakeover(role == .server ? .client : .server)
        }
        func receiveWindowBits(_ role: WebSocketRole) -> Int { sendWindowBits(role == .server ? .client : .server) }
    }

    /// What a server asks for on top of the client's offer. The default accepts offers as
    /// they are. Requesting no context takeover trades compression ratio for memory: without it
    /// a connection that compresses holds ~256 KiB of deflate state (and the client side ~39
    /// KiB of inflate state) for its whole life; with it, only while a message is processed.
    public struct Policy: Equatable, Sendable {
        /// Always answer server_no_context_takeover (§7.1.1.1 allows it unasked).
        public var serverNoContextTakeover = false
        /// Always answer client_no_context_takeover (§7.1.1.2 allows it unasked).
        public var clientNoContextTakeover = false
        /// Largest window the server compresses with; answered as server_max_window_bits when
        /// below 15 or when the client offered a value (§7.1.2.1 allows it unasked).
        public var serverMaxWindowBits = 15
        /// Largest window the server lets the client use. Only expressible when the client
        /// offered client_max_window_bits (§7.1.2.2 forbids it otherwise); an offer without
        /// it is still accepted, and then the client may use 15 bits.
        public var clientMaxWindowBits = 15

        public init(serverNoContextTakeover: Bool = false, clientNoContextTakeover: Bool = false,
                    serverMaxWindowBits: Int = 15, clientMaxWindowBits: Int = 15) {
            precondition((8...15).contains(serverMaxWindowBits) && (8...15).contains(clientMaxWindowBits))
            self.serverNoContextTakeover = serverNoContextTakeover
            self.clientNoContextTakeover = clientNoContextTakeover
            self.serverMaxWindowBits = serverMaxWindowBits
            self.clientMaxWindowBits = clientMaxWindowBits
        }
    }

    /// One offer's parameters after validation.
    private struct Offer {
        var serverNoContextTakeover = false
        var clientNoContextTakeover = false
        var serverMaxWindowBits: Int?
        /// nil: not offered; .some(nil): offered without a value.
        var clientMaxWindowBits: Int??
    }

    /// Window bits: 8...15, decimal without leading zeros (§7.1.2.1, §7.1.2.2).
    static func parseWindowBits(_ value: String) -> Int? {
        let u = Array(value.utf8)
        guard u.count == 1 || u.count == 2, u[0] >= UInt8(ascii: "1"), u[0] <= UInt8(ascii: "9"),
              u.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let v = Int(value), (8...15).contains(v)
        else { return nil }
        return v
    }

    /// Extension and parameter names compare ASCII case-insensitively (HTTP tokens).
    private static func isName(_ a: String, _ lowercaseName: String) -> Bool { a.lowercased() == lowercaseName }

    /// Validates one permessage-deflate element as a client offer; nil = malformed, decline it.
    private static func validateOffer(_ element: WebSocketExtensionOffer) -> Offer? {
        var offer = Offer()
        var seen = Set<String>()
        for (rawName, value) in element.parameters {
            let name = rawName.lowercased()
            guard seen.insert(name).inserted else { return nil }   // duplicates: §7.1 MUST decline
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                offer.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                offer.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let value, let bits = parseWindowBits(value) else { return nil }
                offer.serverMaxWindowBits = bits
            case "client_max_window_bits":
                if let value {
                    guard let bits = parseWindowBits(value) else { return nil }
                    offer.clientMaxWindowBits = .some(bits)
                } else {
                    offer.clientMaxWindowBits = .some(nil)
                }
            default:
                return nil
            }
        }
        return offer
    }

    /// Server side: picks the first acceptable permessage-deflate offer among the client's
    /// Sec-WebSocket-Extensions header values (other extensions are ignored, i.e. declined)
    /// and returns the agreed parameters and the response header value; nil declines all.
    public static func negotiate(offers headerValues: [String], policy: Policy) -> (Parameters, responseHeader: String)? {
        for element in WebSocketExtensionOffer.parse(headerValues) {
            guard let element, isName(element.name, extensionName), let offer = validateOffer(element) else { continue }
            var agreed = Parameters()
            var response = [extensionName]
            if offer.serverNoContextTakeover || policy.serverNoContextTakeover {
                agreed.serverNoContextTakeover = true
                response.append("server_no_context_takeover")
            }
            if offer.clientNoContextTakeover || policy.clientNoContextTakeover {
                agreed.clientNoContextTakeover = true
                response.append("client_no_context_takeover")
            }
            if let offered = offer.serverMaxWindowBits {
                agreed.serverMaxWindowBits = min(offered, policy.serverMaxWindowBits)
                response.append("server_max_window_bits=\(agreed.serverMaxWindowBits)")
            } else if policy.serverMaxWindowBits < 15 {
                agreed.serverMaxWindowBits = policy.serverMaxWindowBits
                response.append("server_max_window_bits=\(agreed.serverMaxWindowBits)")
            }
            if let offered = offer.clientMaxWindowBits {
                // Offered with a value: the client will not use more than that; saying the
                // agreed value back removes any doubt. Offered bare: only limit if we want to.
                let limit = min(offered ?? 15, policy.clientMaxWindowBits)
                agreed.clientMaxWindowBits = limit
                if offered != nil || limit < 15 { response.append("client_max_window_bits=\(limit)") }
            }
            return (agreed, response.joined(separator: "; "))
        }
        return nil
    }

    // MARK: - Client side

    /// Client side: the Sec-WebSocket-Extensions value offering permessage-deflate with the
    /// given wishes. `client_max_window_bits` is always offered (with a value when below 15)
    /// so the server may limit the client's window.
    public static func clientOffer(_ wanted: Parameters = Parameters()) -> String {
        var parts = [extensionName]
        if wanted.serverNoContextTakeover { parts.append("server_no_context_takeover") }
        if wanted.clientNoContextTakeover { parts.append("client_no_context_takeover") }
        if wanted.serverMaxWindowBits < 15 { parts.append("server_max_window_bits=\(wanted.serverMaxWindowBits)") }
        parts.append(wanted.clientMaxWindowBits < 15 ? "client_max_window_bits=\(wanted.clientMaxWindowBits)" : "client_max_window_bits")
        return parts.joined(separator: "; ")
    }

    /// Why a server's extension response is unacceptable (the client must fail the connection).
    public struct ResponseError: Error, Equatable, Sendable {
        public var detail: String
    }

    /// Client side: validates the server's Sec-WebSocket-Extensions response to
    /// `clientOffer(offered)`. Returns nil when the server declined (no extension), the agreed
    /// parameters when it accepted within what was offered, or an error otherwise (§7.1).
    public static func validateResponse(_ headerValues: [String], offered: Parameters) -> Result<Parameters?, ResponseError> {
        let elements = WebSocketExtensionOffer.parse(headerValues)
        if elements.isEmpty { return .success(nil) }
        guard elements.count == 1, let element = elements[0] else {
            return .failure(ResponseError(detail: "unexpected extensions in response"))
        }
        guard isName(element.name, extensionName) else {
            return .failure(ResponseError(detail: "server accepted an extension that was not offered: \(element.name)"))
        }
        var agreed = Parameters()
        var seen = Set<String>()
        for (rawName, value) in element.parameters {
            let name = rawName.lowercased()
            guard seen.insert(name).inserted else { return .failure(ResponseError(detail: "duplicate parameter \(name)")) }
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return .failure(ResponseError(detail: "server_no_context_takeover has a value")) }
                agreed.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return .failure(ResponseError(detail: "client_no_context_takeover has a value")) }
                agreed.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let value, let bits = parseWindowBits(value), bits <= offered.serverMaxWindowBits else {
                    return .failure(ResponseError(detail: "bad server_max_window_bits"))
                }
                agreed.serverMaxWindowBits = bits
            case "client_max_window_bits":
                // Always offered by clientOffer; the response must carry a value ≤ the offered one.
                guard let value, let bits = parseWindowBits(value), bits <= offered.clientMaxWindowBits else {
                    return .failure(ResponseError(detail: "bad client_max_window_bits"))
                }
                agreed.clientMaxWindowBits = bits
            default:
                return .failure(ResponseError(detail: "unknown parameter \(name)"))
            }
        }
        // The server must honour a server_no_context_takeover we asked for (§7.1.1.1).
        if offered.serverNoContextTakeover && !agreed.serverNoContextTakeover {
            return .failure(ResponseError(detail: "server ignored server_no_context_takeover"))
        }
        // A client that offered client_no_context_takeover keeps its promise either way.
        if offered.clientNoContextTakeover { agreed.clientNoContextTakeover = true }
        if offered.clientMaxWindowBits < 15 && agreed.clientMaxWindowBits > offered.clientMaxWindowBits {
            agreed.clientMaxWindowBits = offered.clientMaxWindowBits
        }
        if offered.serverMaxWindowBits < 15 && !element.parameters.contains(where: { $0.name.lowercased() == "server_max_window_bits" }) {
            return .failure(ResponseError(detail: "server ignored server_max_window_bits"))
        }
        return .success(agreed)
    }
}
