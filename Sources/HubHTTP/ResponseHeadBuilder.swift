// Line-level parsing of a response head: the status line, header fields, and the framing
// decision taken once the blank line arrives. The response parser hands it one complete line
// at a time (CRLF stripped and checked), as the request parser does with RequestHeadBuilder.

/// How the body of the response being parsed is delimited (RFC 9112 §6.3).
enum ResponseFraming: Equatable {
    case none
    case length(Int)
    case chunked
    /// Neither Content-Length nor Transfer-Encoding: the body is everything until the close.
    case untilClose
}

/// Accumulates the status line and header fields of one response.
struct ResponseHeadBuilder {
    var version = HTTPVersion.http1_1
    var status = 0
    var reason = ""
    var headers = HTTPHeaders()
    private var framingFields = FramingFields()

    init() {}

    // MARK: Status line

    /// The first bytes of every response; checked as they arrive (see `checkPrefix`).
    private static let prefix: [UInt8] = Array("HTTP/".utf8)

    /// Judges the first bytes of a status line before its end has arrived, so that a peer that
    /// is not speaking HTTP (a TLS server reached over plain TCP, say) is refused on its first
    /// bytes rather than after a head's worth of them. Stops without verdict at CR or LF, which
    /// the line splitter judges; any other mismatch gives the very error the complete-line
    /// parse would give, so the verdict does not depend on how the input was split.
    static func checkPrefix(_ buf: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> HTTPResponseParseError? {
        var i = 0
        while i < prefix.count && start &+ i < end {
            let b = buf[start &+ i]
            if b == ASCII.cr || b == ASCII.lf { return nil }
            if b != prefix[i] { return .notHTTP }
            i &+= 1
        }
        return nil
    }

    /// Parses `HTTP-version SP status-code SP [ reason-phrase ]` (RFC 9112 §4) from
    /// `buf[start..<end]`. A missing SP after the code is accepted, as §4 asks of recipients.
    mutating func parseStatusLine(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HTTPResponseParseError? {
        if let error = Self.checkPrefix(buf, from: start, to: end) { return error }
        let versionEnd = start &+ 8
        guard versionEnd <= end else { return .invalidStatusLine("status line too short") }
        switch HTTPVersion.parse(buf, start, versionEnd) {
        case .malformed: return .invalidStatusLine("version must be HTTP/DIGIT.DIGIT")
        case .unsupported: return .versionNotSupported
        case .supported(let v): version = v
        }
        guard versionEnd &+ 4 <= end, buf[versionEnd] == ASCII.space,
              HTTPSyntax.isDigit(buf[versionEnd &+ 1]), HTTPSyntax.isDigit(buf[versionEnd &+ 2]),
              HTTPSyntax.isDigit(buf[versionEnd &+ 3])
        else { return .invalidStatusLine("expected SP and a three-digit status code after the version") }
        status = Int(buf[versionEnd &+ 1] &- ASCII.zero) * 100 + Int(buf[versionEnd &+ 2] &- ASCII.zero) * 10
            + Int(buf[versionEnd &+ 3] &- ASCII.zero)
        guard (100...599).contains(status) else { return .invalidStatusLine("status code \(status) is outside 100...599") }
        let codeEnd = versionEnd &+ 4
        if codeEnd == end {
            reason = ""
            return nil
        }
        guard buf[codeEnd] == ASCII.space else { return .invalidStatusLine("expected SP after the status code") }
        if let bad = HTTPSyntax.firstForbiddenValueByte(in: buf, from: codeEnd &+ 1, to: end) {
            return buf[bad] == ASCII.cr ? HTTPResponseParseError(.bareCR)
                                        : .invalidStatusLine("reason phrase contains a control character")
        }
        reason = HTTPSyntax.string(buf, codeEnd &+ 1, end)
        return nil
    }

    // MARK: Header fields

    /// Validates and stores one header field line, recording framing facts.
    mutating func addField(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HTTPParseError? {
        let f: HeaderFieldLine.Bounds
        switch HeaderFieldLine.split(buf, start, end) {
        case .failure(let error): return error
        case .success(let bounds): f = bounds
        }
        if let error = framingFields.note(buf, nameStart: start, f) { return error }
        headers.add(name: HTTPSyntax.string(buf, start, f.nameEnd), value: HTTPSyntax.string(buf, f.valueStart, f.valueEnd))
        return nil
    }

    // MARK: End of head

    /// Interim responses (RFC 9110 §15.2) other than 101, which ends HTTP on the connection.
    var isInterim: Bool { (100...199).contains(status) && status != 101 }

    /// Decides body framing (RFC 9112 §6.3): no body for HEAD, 1xx, 204 and 304 whatever the
    /// fields say; otherwise Transfer-Encoding, then Content-Length, then the close.
    func framing(requestMethod: HTTPMethod, maxBodyBytes: Int) -> Result<ResponseFraming, HTTPParseError> {
        if requestMethod == .head || HTTPResponseEncoder.bodyForbidden(status) { return .success(.none) }
        return framingFields.announcedFraming(version: version, maxBodyBytes: maxBodyBytes).map { announced in
            switch announced {
            case .some(BodyFraming.none): return ResponseFraming.none
            case .some(.length(let n)): return .length(n)
            case .some(.chunked): return .chunked
            case nil: return .untilClose
            }
        }
    }

    /// Builds the response, moving the accumulated fields out of the builder.
    func makeResponse(body: [UInt8], untilClose: Bool) -> HTTPResponse {
        HTTPResponse(version: version, status: status, reason: reason, headers: headers, body: body,
                     keepAlive: !untilClose && framingFields.keepAlive(version: version))
    }
}
