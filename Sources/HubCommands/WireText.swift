import Foundation
import HubTelemetry

/// Small JSON writing helpers for hot answers built by concatenation (claims, events): ids and
/// states are plain ASCII, free text goes through `quoted`.
enum WireText {
    /// A JSON string literal of `text`.
    static func quoted(_ text: String) -> String { JSONText.quoted(text) }

    /// `2026-12-06T18:04:01.123Z` (UTC, milliseconds), the API's time format.
    static func time(millis ms: Int64) -> String { JSONText.timestamp(unixMillis: ms) }

    /// A flat JSON object from ordered pairs whose values are already JSON text.
    static func object(_ fields: [(String, String)]) -> String {
        var out = "{"
        for (i, (key, value)) in fields.enumerated() {
            if i > 0 { out += "," }
            out += "\"" + key + "\":" + value
        }
        return out + "}"
    }
}

extension Date {
    /// Now, truncated to the millisecond (what the records keep).
    static func storeNow() -> Date {
        Date(timeIntervalSince1970: Double(Int64(Date().timeIntervalSince1970 * 1000)) / 1000)
    }

    var storeMillis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }

    init(storeMillis: Int64) { self.init(timeIntervalSince1970: Double(storeMillis) / 1000) }
}
