// The header fields that decide how a message is delimited and whether its connection stays
// open: Content-Length, Transfer-Encoding and Connection. Requests and responses frame their
// bodies by the same rules (RFC 9112 §6), so the request parser and the response parser both
// record them here, while each keeps the fields only its own side has (Host, Expect, status).

/// How the body of the message being parsed is delimited (RFC 9112 §6.3).
enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
}

/// Facts gathered from the framing fields while the header lines go by, so the framing
/// decision at the end of the head needs no header lookups.
struct FramingFields {
    var contentLengthSeen = false
    /// Parsed Content-Length; UInt64.max stands for "overflowed", which is rejected as too
    /// large later (two overflowing values compare equal, and both are too large anyway).
    var contentLength: UInt64 = 0
    var transferEncodingSeen = false
    var chunkedIsLast = false
    var chunkedCount = 0
    var otherCodings = false
    var connectionClose = false
    var connectionKeepAlive = false
    var connectionUpgrade = false

    /// Records the field whose name is `buf[nameStart..<f.nameEnd]` if it is one of the three
    /// framing fields; other names cost one length switch. Returns an error for a malformed or
    /// conflicting Content-Length.
    @inline(__always)
    mutating func note(_ buf: UnsafeBufferPointer<UInt8>, nameStart: Int, _ f: HeaderFieldLine.Bounds) -> HTTPParseError? {
        switch f.nameEnd &- nameStart {
        case 10 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "connection"):
            HTTPSyntax.forEachListElement(buf, f.valueStart, f.valueEnd) { s, e in
                if HTTPSyntax.equalsLowercase(buf, s, e, "close") { connectionClose = true }
                else if HTTPSyntax.equalsLowercase(buf, s, e, "keep-alive") { connectionKeepAlive = true }
                else if HTTPSyntax.equalsLowercase(buf, s, e, "upgrade") { connectionUpgrade = true }
                return true
            }
        case 14 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "content-length"):
            return noteContentLength(buf, f.valueStart, f.valueEnd)
        case 17 where HTTPSyntax.equalsLowercase(buf, nameStart, f.nameEnd, "transfer-encoding"):
            transferEncodingSeen = true
            HTTPSyntax.forEachListElement(buf, f.valueStart, f.valueEnd) { s, e in
                if HTTPSyntax.equalsLowercase(buf, s, e, "chunked") {
                    chunkedCount &+= 1
                    chunkedIsLast = true
                } else {
                    otherCodings = true
                    chunkedIsLast = false
                }
                return true
            }
        default:
            break
        }
        return nil
    }

    /// `Content-Length = 1*DIGIT`, possibly repeated as a list or in several fields. RFC 9112
    /// §6.3 allows accepting identical repeats ("5, 5"); differing ones are the classic
    /// request-smuggling ambiguity and are rejected.
    private mutating func noteContentLength(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> HTTPParseError? {
        var error: HTTPParseError?
        var elements = 0
        HTTPSyntax.forEachListElement(buf, start, end) { s, e in
            elements &+= 1
            var value: UInt64 = 0
            var i = s
            while i < e {
                let b = buf[i]
                guard HTTPSyntax.isDigit(b) else {
                    error = .invalidContentLength("Content-Length must be digits only")
                    return false
                }
                // Saturate instead of trapping: an absurd length is "too large", not a crash.
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(b &- ASCII.zero))
                value = (o1 || o2) ? UInt64.max : a
                if value == UInt64.max { break }
                i &+= 1
            }
            // Finish validating the digits even after saturation, so "99…9x" is still a 400.
            while i < e {
                if !HTTPSyntax.isDigit(buf[i]) {
                    error = .invalidContentLength("Content-Length must be digits only")
                    return false
                }
                i &+= 1
            }
            if contentLengthSeen && value != contentLength {
                error = .conflictingContentLength
                return false
            }
            contentLengthSeen = true
            contentLength = value
            return true
        }
        if error == nil && elements == 0 { error = .invalidContentLength("empty Content-Length") }
        return error
    }

    /// The body framing the fields announce (RFC 9112 §6.1–6.3), or nil when the message has
    /// neither Content-Length nor Transfer-Encoding (requests: no body; responses: the body
    /// runs until the connection closes). A length above `maxBodyBytes` is refused here,
    /// before a byte of the body is read.
    func announcedFraming(version: HTTPVersion, maxBodyBytes: Int) -> Result<BodyFraming?, HTTPParseError> {
        if transferEncodingSeen {
            // Both present: the message could be read two ways by two parsers (smuggling).
            if contentLengthSeen { return .failure(.transferEncodingWithContentLength) }
            // §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            if version == .http1_0 { return .failure(.invalidTransferEncoding("Transfer-Encoding in an HTTP/1.0 message")) }
            // §6.3: if chunked is not the final coding the length cannot be known.
            if !chunkedIsLast { return .failure(.invalidTransferEncoding("chunked must be the final transfer coding")) }
            if chunkedCount > 1 { return .failure(.invalidTransferEncoding("chunked applied more than once")) }
            // Well-framed but with a coding (gzip, …) we do not decode: §6.1 suggests 501.
            if otherCodings { return .failure(.unsupportedTransferEncoding) }
            return .success(.chunked)
        }
        if contentLengthSeen {
            if contentLength > UInt64(maxBodyBytes) { return .failure(.payloadTooLarge(maxBodyBytes)) }
            return .success(contentLength == 0 ? BodyFraming.none : .length(Int(contentLength)))
        }
        return .success(nil)
    }

    /// Whether the connection may carry another message afterwards (RFC 9112 §9.3): HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no `close`).
    func keepAlive(version: HTTPVersion) -> Bool {
        version == .http1_1 ? !connectionClose : connectionKeepAlive && !connectionClose
    }
}
