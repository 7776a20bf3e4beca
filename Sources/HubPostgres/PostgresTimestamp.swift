import Foundation

/// `timestamptz` text in and out, without DateFormatter (slow, locale-dependent) and without
/// libc time functions.
///
/// Every connection sets `TimeZone = 'UTC'` and `DateStyle = 'ISO, MDY'` when it connects, so the
/// server writes `2024-05-01 12:34:56.789012+00`; the parser also takes other offsets
/// (`+05:30`), a `T` separator, missing fractions, `timestamp` without a zone (read as UTC) and
/// `infinity`/`-infinity` (as `Date.distantFuture`/`distantPast`).
enum PostgresTimestamp {
    /// Formats as `YYYY-MM-DD HH:MM:SS.ffffff+00`, rounded to the nearest microsecond (the
    /// server's precision; nearest, not down, so a parsed value formats back unchanged despite
    /// `Double`'s binary fractions).
    static func format(_ date: Date) -> String {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var secs = totalMicros / 1_000_000
        var micros = totalMicros % 1_000_000
        if micros < 0 { micros += 1_000_000; secs -= 1 }
        var days = secs / 86_400
        var secOfDay = secs % 86_400
        if secOfDay < 0 { secOfDay += 86_400; days -= 1 }
        let (y, m, d) = civil(fromDays: days)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2)) \(pad(secOfDay / 3600, 2)):\(pad(secOfDay / 60 % 60, 2)):\(pad(secOfDay % 60, 2)).\(pad(micros, 6))+00"
    }

    /// Parses the server's text output; nil if it is not a timestamp.
    static func parse(_ text: UnsafeRawBufferPointer) -> Date? {
        if text.elementsEqual("infinity".utf8) { return .distantFuture }
        if text.elementsEqual("-infinity".utf8) { return .distantPast }
        var i = 0
        func number(_ digits: Int) -> Int64? {
            guard i + digits <= text.count else { return nil }
            var v: Int64 = 0
            for k in 0..<digits {
                let c = text[i + k]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            i += digits
            return v
        }
        func expect(_ c: Character) -> Bool {
            guard i < text.count, text[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        // Years may have more than four digits; count them up to the '-'.
        var yearDigits = 0
        while i + yearDigits < text.count, text[i + yearDigits] >= 48, text[i + yearDigits] <= 57 { yearDigits += 1 }
        guard yearDigits >= 4, let year = number(yearDigits), expect("-"), let month = number(2), expect("-"), let day = number(2) else { return nil }
        guard (1...12).contains(month), (1...31).contains(day) else { return nil }
        var seconds = days(fromCivil: year, month, day) * 86_400
        var micros: Int64 = 0
        if i < text.count {
            guard expect(" ") || expect("T"), let hh = number(2), expect(":"), let mm = number(2), expect(":"), let ss = number(2) else { return nil }
            seconds += hh * 3600 + mm * 60 + ss
            if i < text.count, text[i] == UInt8(ascii: ".") {
                i += 1
                var scale: Int64 = 100_000
                var sawDigit = false
                while i < text.count, text[i] >= 48, text[i] <= 57 {
                    micros += Int64(text[i] - 48) * scale
                    scale /= 10
                    i += 1
                    sawDigit = true
                }
                guard sawDigit else { return nil }
            }
            if i < text.count {
                let sign: Int64
                if text[i] == UInt8(ascii: "+") { sign = 1 } else if text[i] == UInt8(ascii: "-") { sign = -1 } else if text[i] == UInt8(ascii: "Z") { i += 1; sign = 0 } else { return nil }
                if sign != 0 {
                    i += 1
                    guard let oh = number(2) else { return nil }
                    var offset = oh * 3600
                    if expect(":") { guard let om = number(2) else { return nil }; offset += om * 60 }
                    if expect(":") { guard let os = number(2) else { return nil }; offset += os }
                    seconds -= sign * offset
                }
            }
        }
        // A trailing " BC" (or anything else) is not supported.
        guard i == text.count else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The inverse of `days(fromCivil:)`.
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
