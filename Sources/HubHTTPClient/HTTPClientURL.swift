/// An `http://` or `https://` URL taken apart into what a request needs: where to connect,
/// whether to use TLS, the request target and the `Host` field.
///
/// Hand-parsed rather than through Foundation's URL so that what is accepted is exactly what
/// is documented here: `scheme://host[:port][/path][?query][#fragment]`, host a DNS name, an
/// IPv4 literal or a bracketed IPv6 literal; user information (`user:pass@`) is refused, since
/// credentials belong in headers, and the fragment is dropped (it never goes on the wire).
struct HTTPClientURL: Equatable, Sendable {
    var isTLS: Bool
    /// Host name or address literal, without IPv6 brackets: what is resolved, and what the
    /// server certificate must match.
    var host: String
    var port: Int
    /// Path and query, `/` when the URL has no path.
    var target: String
    /// The `Host` field value: the authority, the port left out when it is the scheme's default.
    var hostField: String

    init(_ string: String) throws(HTTPClientError) {
        func invalid(_ why: String) -> HTTPClientError { .invalidRequest("URL '\(string)': \(why)") }
        let rest: Substring
        if let r = Self.dropPrefix(string, "https://") {
            isTLS = true
            rest = r
        } else if let r = Self.dropPrefix(string, "http://") {
            isTLS = false
            rest = r
        } else {
            throw invalid("scheme must be http:// or https://")
        }
        let withoutFragment = rest.prefix { $0 != "#" }
        let authorityEnd = withoutFragment.firstIndex { $0 == "/" || $0 == "?" } ?? withoutFragment.endIndex
        let authority = withoutFragment[..<authorityEnd]
        let pathAndQuery = withoutFragment[authorityEnd...]
        if authority.contains("@") { throw invalid("user information is not supported") }

        let hostPart: Substring
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw invalid("unterminated IPv6 literal") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after IPv6 literal") }
                portPart = after.dropFirst()
            }
            guard !hostPart.isEmpty, hostPart.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw invalid("malformed IPv6 literal")
            }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
            } else {
                hostPart = authority
            }
            guard !hostPart.isEmpty else { throw invalid("missing host") }
            guard hostPart.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }) else {
                throw invalid("host may contain only ASCII letters, digits, '-', '.' and '_'")
            }
        }
        let defaultPort = isTLS ? 443 : 80
        if let portPart {
            guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let p = Int(portPart), (1...65535).contains(p) else {
                throw invalid("port must be 1...65535")
            }
            port = p
        } else {
            port = defaultPort
        }
        host = String(hostPart)
        target = pathAndQuery.isEmpty ? "/" : (pathAndQuery.hasPrefix("?") ? "/" + pathAndQuery : String(pathAndQuery))
        let bracketed = authority.hasPrefix("[") ? "[\(host)]" : host
        hostField = port == defaultPort ? bracketed : "\(bracketed):\(port)"
    }

    /// `string` without `prefix`, compared ASCII case-insensitively (schemes are case-insensitive).
    private static func dropPrefix(_ string: String, _ prefix: String) -> Substring? {
        guard string.utf8.count >= prefix.utf8.count,
              string.prefix(prefix.count).lowercased() == prefix else { return nil }
        return string.dropFirst(prefix.count)
    }
}
