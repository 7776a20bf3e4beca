// Parsing of Sec-WebSocket-Extensions (RFC 6455 §9.1):
//
//   Sec-WebSocket-Extensions = extension-list
//   extension-list = 1#extension
//   extension = extension-token *( ";" extension-param )
//   extension-param = token [ "=" (token | quoted-string) ]
//
// Several header lines are one list (RFC 7230 §3.2.2). A quoted-string value, after unescaping,
// must itself be a token (RFC 6455 §9.1). Commas and semicolons inside quotes do not split.
// An element that breaks the grammar is kept as `nil` so the caller declines just that offer
// (and keeps the order of the rest: offers are in the client's order of preference).

/// One element of a Sec-WebSocket-Extensions list.
public struct WebSocketExtensionOffer: Equatable, Sendable {
    /// The extension token, as sent.
    public var name: String
    /// Parameters in order; `value` is nil for a parameter without `=`.
    public var parameters: [(name: String, value: String?)]

    public init(name: String, parameters: [(name: String, value: String?)]) {
        self.name = name
        self.parameters = parameters
    }

    public static func == (a: WebSocketExtensionOffer, b: WebSocketExtensionOffer) -> Bool {
        a.name == b.name && a.parameters.count == b.parameters.count
            && zip(a.parameters, b.parameters).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// Parses header values into elements; a malformed element is `nil` in its place. Empty
    /// elements (`a, , b`) are skipped, as the `#` list rule allows.
    public static func parse(_ headerValues: [String]) -> [WebSocketExtensionOffer?] {
        var result: [WebSocketExtensionOffer?] = []
        for value in headerValues {
            for element in splitTopLevel(Array(value.utf8), separator: UInt8(ascii: ",")) {
                let trimmed = trimOWS(element)
                if trimmed.isEmpty { continue }
                result.append(parseElement(trimmed))
            }
        }
        return result
    }

    private static func parseElement(_ bytes: ArraySlice<UInt8>) -> WebSocketExtensionOffer? {
        let parts = splitTopLevel(Array(bytes), separator: UInt8(ascii: ";"))
        guard let first = parts.first else { return nil }
        let name = trimOWS(first)
        guard isToken(name) else { return nil }
        var offer = WebSocketExtensionOffer(name: String(decoding: name, as: UTF8.self), parameters: [])
        for part in parts.dropFirst() {
            let param = trimOWS(part)
            if let eq = param.firstIndex(of: UInt8(ascii: "=")) {
                let pname = trimOWS(param[param.startIndex..<eq])
                var pvalue = trimOWS(param[(eq + 1)...])
                guard isToken(pname) else { return nil }
                if pvalue.first == UInt8(ascii: "\"") {
                    guard let unquoted = unquote(pvalue) else { return nil }
                    pvalue = unquoted[...]
                }
                guard isToken(pvalue) else { return nil }
                offer.parameters.append((String(decoding: pname, as: UTF8.self), String(decoding: pvalue, as: UTF8.self)))
            } else {
                guard isToken(param) else { return nil }
                offer.parameters.append((String(decoding: param, as: UTF8.self), nil))
            }
        }
        return offer
    }

    /// Splits at `separator` outside quoted strings (a backslash escapes the next character
    /// inside quotes). An unterminated quote runs to the end, and `parseElement` rejects it.
    private static func splitTopLevel(_ bytes: [UInt8], separator: UInt8) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var start = 0
        var inQuotes = false
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if inQuotes {
                if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { inQuotes = false }
            } else if c == UInt8(ascii: "\"") {
                inQuotes = true
            } else if c == separator {
                parts.append(bytes[start..<i])
                start = i + 1
            }
            i += 1
        }
        parts.append(bytes[start..<min(bytes.count, max(start, bytes.count))])
        return parts
    }

    /// Removes a quoted-string's quotes and backslash escapes; nil if it is not exactly one
    /// well-formed quoted-string.
    private static func unquote(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        var i = bytes.startIndex + 1
        while i < bytes.endIndex {
            let c = bytes[i]
            if c == UInt8(ascii: "\\") {
                guard i + 1 < bytes.endIndex else { return nil }
                out.append(bytes[i + 1])
                i += 2
            } else if c == UInt8(ascii: "\"") {
                return i + 1 == bytes.endIndex ? out : nil
            } else {
                out.append(c)
                i += 1
            }
        }
        return nil
    }

    private static func trimOWS(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = bytes
        while let f = s.first, f == 0x20 || f == 0x09 { s.removeFirst() }
        while let l = s.last, l == 0x20 || l == 0x09 { s.removeLast() }
        return s
    }

    /// RFC 7230 token: 1*tchar.
    static func isToken<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        guard !bytes.isEmpty else { return false }
        return bytes.allSatisfy(isTChar)
    }

    static func isTChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
