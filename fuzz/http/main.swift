// libFuzzer target for the HubHTTP request parser (and the response encoder it feeds), and
// for the response parser of the hub's HTTP client, which reads the same input as a response.
//
// Built by fuzz/run-http.sh together with Sources/HubHTTP/*.swift into one module, so the
// parser's internals are in scope without @testable. Beyond "does not crash", the target
// checks two properties and traps when one fails, which libFuzzer records as a crash:
//   1. termination: draining `next()` ends within (input length + 2) calls;
//   2. split invariance: feeding the input whole and in two pieces gives identical results;
//   3. the response encoder never lets a CR/LF from a header value split the head, and a
//      PreparedResponseHead writes the same bytes as the general encoder;
//   4. the response parser terminates, is split-invariant (EOF included) and keeps its limits.
// Those are the properties the unit tests check on samples; the fuzzer checks them on
// whatever input reaches new coverage.

/// Small limits let short fuzz inputs reach the 414/431/413 paths; the first input byte
/// picks them or the defaults.
private let smallLimits = HTTPParserLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256,
                                           maxHeaderCount: 8, maxBodyBytes: 128, maxChunkLineBytes: 32)

private struct Outcome: Equatable {
    var requests: [HTTPRequest] = []
    var end: HTTPParseResult = .needMoreData
    var leftover: [UInt8] = []
}

/// Appends each chunk and drains the parser after it, like a connection would per read.
private func parse(_ chunks: [UnsafeRawBufferPointer], limits: HTTPParserLimits, total: Int) -> Outcome {
    var parser = HTTPParser(limits: limits)
    var outcome = Outcome()
    for chunk in chunks {
        parser.append(chunk)
        var calls = 0
        drain: while true {
            calls += 1
            if calls > total + 2 { fatalError("next() did not terminate") }
            switch parser.next() {
            case .request(let request):
                outcome.requests.append(request)
            case .needMoreData:
                outcome.end = .needMoreData
                break drain
            case .error(let error):
                if parser.next() != .error(error) { fatalError("error is not sticky") }
                outcome.end = .error(error)
                return outcome
            }
        }
    }
    outcome.leftover = parser.takeBufferedBytes()
    return outcome
}

/// Exercises the response side with what the parser produced (pure, cheap).
private func respond(to outcome: Outcome) {
    var out: [UInt8] = []
    let date = HTTPDate(unixSeconds: 784_111_777)
    for request in outcome.requests {
        var headers = HTTPHeaders()
        for (name, value) in request.headers { headers.add(name: name, value: value) }
        let head = HTTPResponseHead(status: 200 + request.body.count % 400, headers: headers)
        let start = out.count
        HTTPResponseEncoder.encode(head, body: request.body, keepAlive: request.keepAlive,
                                   headOnly: request.method == .head, date: date, into: &out)
        // Differential check: a prepared head must produce exactly what `encode` produced.
        if let prepared = PreparedResponseHead(head) {
            var fast: [UInt8] = []
            request.body.withUnsafeBytes {
                HTTPResponseEncoder.encode(prepared: prepared, body: $0, keepAlive: request.keepAlive,
                                           headOnly: request.method == .head, date: date, into: &fast)
            }
            if fast[...] != out[start...] { fatalError("prepared head differs from encode") }
        }
    }
    if case .error(let error) = outcome.end {
        if !HTTPParseError.catalogue.contains(where: { $0.code == error.code && $0.status == error.status }) {
            fatalError("uncatalogued error \(error)")
        }
    }
}

/// Header injection: a response header built from arbitrary bytes must stay exactly one line.
private func checkEncoderSanitizes(_ payload: UnsafeRawBufferPointer) {
    let half = payload.count / 2
    let name = String(decoding: payload[..<half], as: UTF8.self)
    let value = String(decoding: payload[half...], as: UTF8.self)
    var out: [UInt8] = []
    HTTPResponseEncoder.encode(HTTPResponseHead(status: 200, headers: [name: value]), body: [0x0D, 0x0A],
                               keepAlive: true, headOnly: false, date: HTTPDate(), into: &out)
    var expectedLines = 2                                   // status line + the field
    if !HTTPSyntax.equalsIgnoringCase(name, "date") { expectedLines += 1 }
    if !HTTPSyntax.equalsIgnoringCase(name, "content-length")
        && !HTTPSyntax.equalsIgnoringCase(name, "transfer-encoding") { expectedLines += 1 }
    // Walk the head: every CR must be followed by LF and every LF preceded by CR; the first
    // empty line ends the head and must come after exactly `expectedLines` lines.
    var lines = 0
    var lineStart = 0
    var i = 0
    while i < out.count {
        let byte = out[i]
        if byte == 0x0A { fatalError("bare LF in response head") }
        if byte == 0x0D {
            if i + 1 >= out.count || out[i + 1] != 0x0A { fatalError("bare CR in response head") }
            if i == lineStart { break }                     // blank line: end of head
            lines += 1
            i += 2
            lineStart = i
            continue
        }
        i += 1
    }
    if lines != expectedLines { fatalError("response head has \(lines) lines, expected \(expectedLines)") }
}

private let smallResponseLimits = HTTPResponseParserLimits(maxHeadBytes: 256, maxHeaderCount: 8, maxBodyBytes: 128,
                                                           maxChunkLineBytes: 32, maxInterimResponses: 2)

private struct ResponseOutcome: Equatable {
    var responses: [HTTPResponse] = []
    var end: HTTPResponseParseResult = .needMoreData
}

/// Appends each chunk and drains after it, then signals EOF and drains once more.
private func parseResponses(_ chunks: [UnsafeRawBufferPointer], limits: HTTPResponseParserLimits, total: Int) -> ResponseOutcome {
    var parser = HTTPResponseParser(limits: limits)
    var outcome = ResponseOutcome()
    func drain() -> Bool {
        for _ in 0...(total + 2) {
            switch parser.next() {
            case .response(let response):
                outcome.responses.append(response)
            case .needMoreData:
                outcome.end = .needMoreData
                return true
            case .error(let error):
                if parser.next() != .error(error) { fatalError("response parser error is not sticky") }
                outcome.end = .error(error)
                return false
            }
        }
        fatalError("response parser next() did not terminate")
    }
    for chunk in chunks {
        parser.append(chunk)
        if !drain() { return outcome }
    }
    parser.finish()
    _ = drain()
    return outcome
}

private func checkResponseParser(_ payload: UnsafeRawBufferPointer, cut: Int, small: Bool) {
    let limits = small ? smallResponseLimits : HTTPResponseParserLimits()
    let whole = parseResponses([payload], limits: limits, total: payload.count)
    let pieces = parseResponses([UnsafeRawBufferPointer(rebasing: payload[..<cut]),
                                 UnsafeRawBufferPointer(rebasing: payload[cut...])], limits: limits, total: payload.count)
    if whole != pieces { fatalError("response split at \(cut) changed the result: \(whole.end) vs \(pieces.end)") }
    for response in whole.responses {
        if response.body.count > limits.maxBodyBytes { fatalError("response body over limit") }
        if response.headers.count > limits.maxHeaderCount { fatalError("too many response headers") }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let payload = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let limits = selector & 1 == 0 ? smallLimits : HTTPParserLimits()
    // Split point from the first byte, scaled to the payload so every position is reachable.
    let cut = payload.count * Int(selector >> 1) / 127

    let whole = parse([payload], limits: limits, total: payload.count)
    let pieces = parse([UnsafeRawBufferPointer(rebasing: payload[..<cut]),
                        UnsafeRawBufferPointer(rebasing: payload[cut...])],
                       limits: limits, total: payload.count)
    if whole != pieces {
        fatalError("split at \(cut) changed the result: \(whole.end) vs \(pieces.end)")
    }
    for request in whole.requests {
        if request.body.count > limits.maxBodyBytes { fatalError("body over limit") }
        if request.headers.count > limits.maxHeaderCount { fatalError("too many headers") }
    }
    respond(to: whole)
    checkEncoderSanitizes(payload)
    checkResponseParser(payload, cut: cut, small: selector & 1 == 0)
    return 0
}
