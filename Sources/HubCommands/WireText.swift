import Foundation

/// Small JSON writing helpers for hot answers built by concatenation (claims, events): ids and
/// states are plain ASCII, free text goes through `quoted`.
enum WireText {
    /// A JSON string literal of `text`.
    static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
        return out
    }

    /// `2026-12-06T18:04:01.123Z` (UTC, milliseconds), the API's time format.
    static func time(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        return time(millis: ms)
    }

    static func time(millis ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let fraction = Int(ms - seconds * 1000)
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), fraction)
    }

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
