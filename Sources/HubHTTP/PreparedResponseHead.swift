/// A response head encoded once (status line and fixed fields) for responses sent many times:
/// `/healthz`, canned errors, static documents. Encoding a prepared head is a few block copies
/// instead of a field-by-field walk with sanitising; the per-response parts (`Date`,
/// `Content-Length`, `Connection: close`, one extra field such as `X-Request-ID`) are still
/// written fresh.
public final class PreparedResponseHead: Sendable {
    public let status: Int
    /// `HTTP/1.1 <status> <reason>\r\n` followed by the fields, each ending in CRLF.
    let bytes: [UInt8]

    /// Nil when the head carries a field the encoder must compute per response (`Date`,
    /// `Content-Length`, `Transfer-Encoding`, `Connection`): those go through `encode`.
    public init?(_ head: HTTPResponseHead) {
        for field in head.headers.fields {
            for name in ["date", "content-length", "transfer-encoding", "connection"] where HTTPSyntax.equalsIgnoringCase(field.name, name) {
                return nil
            }
        }
        status = head.status
        var out: [UInt8] = []
        // The general encoder writes exactly these bytes first; reuse it rather than a copy.
        HTTPResponseEncoder.encodeStatusAndFields(head, into: &out)
        bytes = out
    }
}

extension HTTPResponseEncoder {
    /// Writes a response whose head was prepared: same bytes as `encode` with the same
    /// arguments would write.
    public static func encode(prepared: PreparedResponseHead, body: UnsafeRawBufferPointer, keepAlive: Bool,
                              headOnly: Bool, date: HTTPDate, extra: HTTPHeaders.Field? = nil, into out: inout [UInt8]) {
        out.reserveCapacity(out.count + prepared.bytes.count + 128 + (headOnly ? 0 : body.count))
        out.append(contentsOf: prepared.bytes)
        if let extra { appendField(name: extra.name, value: extra.value, into: &out) }
        appendStatic("Date: ", into: &out)
        out.append(contentsOf: date.bytes)
        let bodyAllowed = !bodyForbidden(prepared.status)
        if bodyAllowed {
            appendStatic("\r\nContent-Length: ", into: &out)
            appendDecimal(body.count, into: &out)
        }
        appendStatic(keepAlive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n", into: &out)
        if bodyAllowed && !headOnly && body.count > 0 {
            out.append(contentsOf: body)
        }
    }
}
