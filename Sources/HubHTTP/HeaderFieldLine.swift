// One `field-name ":" OWS field-value OWS` line, as found in the header and trailer sections of
// requests and responses alike (RFC 9112 §5, RFC 9110 §5.5).

/// Validation of a single field line, shared by every parser in the module.
enum HeaderFieldLine {
    /// Bounds of a syntactically valid field line `name ":" OWS value OWS`.
    struct Bounds {
        var nameEnd: Int
        var valueStart: Int
        var valueEnd: Int
    }

    /// Validates one field line (RFC 9112 §5, RFC 9110 §5.5). Shared by header and trailer
    /// sections, which have identical syntax.
    static func split(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Result<Bounds, HTTPParseError> {
        // obs-fold: a continuation line. RFC 9112 §5.2 lets a server reject it, which closes
        // the door on parsers that disagree about where a value ends.
        if HTTPSyntax.isOWS(buf[start]) { return .failure(.obsFold) }

        var i = start
        while i < end && HTTPSyntax.isTchar(buf[i]) { i &+= 1 }
        if i == end { return .failure(.invalidHeaderName("header line without colon")) }
        let b = buf[i]
        if b != ASCII.colon {
            if b == ASCII.cr { return .failure(.bareCR) }
            // Whitespace before the colon MUST be rejected (RFC 9112 §5.1): it is a known
            // smuggling vector ("Transfer-Encoding : chunked").
            return .failure(.invalidHeaderName(HTTPSyntax.isOWS(b) ? "whitespace before colon" : "header name is not a token"))
        }
        if i == start { return .failure(.invalidHeaderName("empty header name")) }

        var vs = i &+ 1
        var ve = end
        while vs < ve && HTTPSyntax.isOWS(buf[vs]) { vs &+= 1 }
        while ve > vs && HTTPSyntax.isOWS(buf[ve &- 1]) { ve &-= 1 }
        if let bad = HTTPSyntax.firstForbiddenValueByte(in: buf, from: vs, to: ve) {
            return .failure(buf[bad] == ASCII.cr ? .bareCR : .invalidHeaderValue)
        }
        return .success(Bounds(nameEnd: i, valueStart: vs, valueEnd: ve))
    }
}
