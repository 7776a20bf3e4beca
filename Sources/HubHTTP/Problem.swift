// The JSON wire format of the hub's HTTP API: RFC 7807 / RFC 9457 problem details (the one
// error body format) and JSON request/response bodies, whose decoding failures become problems.

import Foundation

/// An `application/problem+json` error body.
///
/// Every error the API returns has this shape, so clients branch on the stable `code` (the
/// last segment of `type`) instead of parsing `detail`. It is also an `Error`: handlers throw
/// it and the server edge turns it into a response with `status` and `jsonBytes()`.
///
/// ```json
/// {"code":"payload_too_large","detail":"body exceeds 1048576 bytes","request_id":"…",
///  "status":413,"title":"Content Too Large","type":"https://devicehub.dev/problems/payload_too_large"}
/// ```
public struct Problem: Error, Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// A URI naming the problem type: `https://devicehub.dev/problems/<code>`.
    public var type: String
    /// Short human summary; the reason phrase of `status` unless set otherwise.
    public var title: String
    public var status: Int
    /// Stable snake_case identifier clients may switch on.
    public var code: String
    /// Human explanation of this occurrence; never contains secrets or internal state.
    public var detail: String?
    /// URI of this occurrence (usually the request path), when useful.
    public var instance: String?
    /// Correlates the response with server logs.
    public var requestID: String?
    /// Sent as `Retry-After` (seconds) by the server edge, not in the body: rate limits, full
    /// queues, dependencies that are briefly away.
    public var retryAfterSeconds: Int?
    /// The current state of the record a 409 refused to change (`claimed`, `canceled` ...), so
    /// a client can act without another request.
    public var state: String?

    /// Media type to send in `Content-Type`.
    public static let contentType = "application/problem+json"

    /// Base of every problem `type` URI.
    public static let typeBase = "https://devicehub.dev/problems/"

    enum CodingKeys: String, CodingKey {
        case type, title, status, code, detail, instance, state
        case requestID = "request_id"
    }

    /// A problem whose title is the reason phrase of `status` and whose type derives from `code`.
    public init(status: Int, code: String, detail: String? = nil) {
        self.type = Problem.typeBase + code
        self.title = HTTPResponseEncoder.reasonPhrase(status)
        self.status = status
        self.code = code
        self.detail = detail
        self.instance = nil
        self.requestID = nil
        self.retryAfterSeconds = nil
        self.state = nil
    }

    /// The response to a request the parser rejected: same status, code and detail.
    public init(_ error: HTTPParseError) {
        self.init(status: error.status, code: error.code, detail: error.detail)
    }

    /// Returns a copy carrying a request id (handy at the edge: `throw problem.with(requestID:)`).
    public func with(requestID: String?, instance: String? = nil) -> Problem {
        var copy = self
        copy.requestID = requestID
        if let instance { copy.instance = instance }
        return copy
    }

    /// The JSON body. Keys are sorted so identical problems produce identical bytes (stable
    /// tests, cacheable error pages); absent optionals are omitted, not written as null.
    public func jsonBytes() -> [UInt8] {
        if let data = try? Problem.encoder.encode(self) {
            return [UInt8](data)
        }
        // Encoding a struct of Strings and an Int cannot fail; this is only a safety net so an
        // error path can never itself crash the server.
        return Array(#"{"status":500,"code":"internal_error","title":"Internal Server Error"}"#.utf8)
    }

    /// JSONEncoder is Sendable (a call keeps no state in the instance), so one configured
    /// instance is shared; building one per error would dominate small error responses.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public var description: String {
        "\(status) \(code)" + (detail.map { ": \($0)" } ?? "")
    }
}

// Common API problems, so handlers and the server edge spell each code once.
extension Problem {
    public static func notFound(_ detail: String? = nil) -> Problem {
        Problem(status: 404, code: "not_found", detail: detail)
    }

    /// A 405; the caller sets the `Allow` header from `RouteMatch.methodNotAllowed`.
    public static func methodNotAllowed(allow: [String]) -> Problem {
        Problem(status: 405, code: "method_not_allowed",
                detail: "allowed methods: " + allow.joined(separator: ", "))
    }

    public static func invalidJSON(_ detail: String) -> Problem {
        Problem(status: 400, code: "invalid_json", detail: detail)
    }

    public static func unsupportedMediaType(_ detail: String = "expected application/json") -> Problem {
        Problem(status: 415, code: "unsupported_media_type", detail: detail)
    }

    public static func internalError(_ detail: String? = nil) -> Problem {
        Problem(status: 500, code: "internal_error", detail: detail)
    }
}

/// Decodes request bodies and encodes response bodies as JSON.
///
/// Decoding errors become a 400 `invalid_json` Problem whose detail names the offending field
/// path (`devices[2].name: expected String`), because "bad request" alone leaves API users
/// guessing. Checking `Content-Type` (415) is the caller's job: it needs the request headers.
public enum JSONBody {
    /// Decodes `type` from `body`, or throws a 400 `invalid_json` Problem.
    public static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(Problem) -> T {
        guard !body.isEmpty else { throw Problem.invalidJSON("request body is empty") }
        do {
            return try decoder.decode(T.self, from: Data(body))
        } catch let error as DecodingError {
            throw Problem.invalidJSON(describe(error))
        } catch {
            throw Problem.invalidJSON("malformed JSON")
        }
    }

    /// Encodes `value` as JSON (sorted keys, unescaped slashes).
    ///
    /// Non-finite floats, the one thing JSON cannot represent, are written as the strings
    /// "NaN", "Infinity" and "-Infinity" rather than failing: a stray NaN in a telemetry
    /// value must not turn a whole response into an error.
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        do {
            return [UInt8](try encoder.encode(value))
        } catch {
            // Only reachable through a custom `encode(to:)` that throws; report it in-band as
            // a JSON value the client can still parse.
            return Problem.internalError("response encoding failed").jsonBytes()
        }
    }

    /// Configured once and shared, like `Problem`'s encoder (both types are Sendable: a call
    /// keeps no state in the instance); building one per request would cost more than small
    /// bodies do.
    private static let decoder = JSONDecoder()
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }()

    /// A one-line, client-safe description of a decoding failure: the coding path and what
    /// was wrong, without Swift type internals beyond the expected JSON type.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, extra: CodingKey? = nil) -> String {
            var keys = context.codingPath
            if let extra { keys.append(extra) }
            var out = ""
            for key in keys {
                if let index = key.intValue {
                    out += "[\(index)]"
                } else {
                    out += out.isEmpty ? key.stringValue : "." + key.stringValue
                }
            }
            return out.isEmpty ? "body" : out
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context, extra: key)): required field is missing"
        case .typeMismatch(let expected, let context):
            return "\(path(context)): expected \(jsonTypeName(expected))"
        case .valueNotFound(let expected, let context):
            return "\(path(context)): expected \(jsonTypeName(expected)), found null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "malformed JSON" : "\(path(context)): invalid value"
        @unknown default:
            return "malformed JSON"
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "string"
        case is Bool.Type: return "boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type,
             is Double.Type, is Float.Type: return "number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "array" }
            return "object"
        }
    }
}
