// The `Date` response header value, formatted without Foundation and cached per second.

/// An IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`, for one unix second.
///
/// Every response carries a Date header, and at tens of thousands of responses per second
/// formatting it each time (let alone through `DateFormatter`) would show up in profiles. The
/// connection loop keeps one `HTTPDate`, calls `update(unixSeconds:)` once per loop iteration
/// with its injected clock, and the encoder copies the 29 cached bytes.
public struct HTTPDate: Hashable, Sendable, CustomStringConvertible {
    /// Length of every IMF-fixdate.
    public static let byteCount = 29

    /// The formatted date, always `byteCount` ASCII bytes.
    public private(set) var bytes: [UInt8]
    /// The second the bytes describe (after clamping, see `init(unixSeconds:)`).
    public private(set) var unixSeconds: Int

    /// Latest second with a four-digit year (9999-12-31T23:59:59Z); IMF-fixdate has no room
    /// for more, and earlier than 1970 never happens with a real clock, so both ends clamp.
    static let maxSeconds = 253_402_300_799

    /// Formats `unixSeconds`, clamped to 1970…9999.
    public init(unixSeconds: Int = 0) {
        self.unixSeconds = Self.clamp(unixSeconds)
        bytes = [UInt8](repeating: 0x20, count: Self.byteCount)
        Self.format(self.unixSeconds, into: &bytes)
    }

    /// Re-formats only when the second changed, writing into the existing storage (no
    /// allocation, unless the bytes are shared with a copy that is still alive).
    public mutating func update(unixSeconds: Int) {
        let s = Self.clamp(unixSeconds)
        guard s != self.unixSeconds else { return }
        self.unixSeconds = s
        Self.format(s, into: &bytes)
    }

    public var description: String { String(decoding: bytes, as: UTF8.self) }

    private static func clamp(_ s: Int) -> Int { min(max(s, 0), maxSeconds) }

    private static let dayNames: StaticString = "SunMonTueWedThuFriSat"
    private static let monthNames: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"

    /// Writes the 29 bytes for a (clamped, non-negative) unix second.
    static func format(_ seconds: Int, into bytes: inout [UInt8]) {
        let days = seconds / 86_400
        let secondOfDay = seconds % 86_400
        let (year, month, day) = civil(fromDays: days)
        let weekday = (days + 4) % 7            // 1970-01-01 was a Thursday (Sunday = 0)
        let hour = secondOfDay / 3600
        let minute = secondOfDay % 3600 / 60
        let second = secondOfDay % 60

        let dayNames = Self.dayNames.utf8Start
        let monthNames = Self.monthNames.utf8Start
        bytes.withUnsafeMutableBufferPointer { out in
            func two(_ v: Int, at i: Int) {
                out[i] = UInt8(truncatingIfNeeded: 0x30 + v / 10)
                out[i + 1] = UInt8(truncatingIfNeeded: 0x30 + v % 10)
            }
            // "Www, DD Mmm YYYY HH:MM:SS GMT"
            out[0] = dayNames[weekday * 3]
            out[1] = dayNames[weekday * 3 + 1]
            out[2] = dayNames[weekday * 3 + 2]
            out[3] = 0x2C                      // ,
            out[4] = 0x20
            two(day, at: 5)
            out[7] = 0x20
            out[8] = monthNames[(month - 1) * 3]
            out[9] = monthNames[(month - 1) * 3 + 1]
            out[10] = monthNames[(month - 1) * 3 + 2]
            out[11] = 0x20
            two(year / 100, at: 12)
            two(year % 100, at: 14)
            out[16] = 0x20
            two(hour, at: 17)
            out[19] = 0x3A                     // :
            two(minute, at: 20)
            out[22] = 0x3A
            two(second, at: 23)
            out[25] = 0x20
            out[26] = 0x47                     // G
            out[27] = 0x4D                     // M
            out[28] = 0x54                     // T
        }
    }

    /// Proleptic Gregorian (year, month 1–12, day 1–31) of a day count since 1970-01-01.
    ///
    /// Howard Hinnant's `civil_from_days`: exact for every day, no tables, no loops, which is
    /// what we want in place of a calendar library (the codec must not depend on Foundation).
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468                       // shift epoch to 0000-03-01
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097                  // day of era [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365   // year of era [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)                   // day of year [0, 365]
        let mp = (5 * doy + 2) / 153                                        // March-based month
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
