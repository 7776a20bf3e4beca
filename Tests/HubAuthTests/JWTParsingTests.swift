import Foundation
@testable import HubAuth
import Testing

/// The hand-written decoders on the verification path, against Foundation as the reference.
@Suite struct JWTParsingTests {
    private func decode(_ s: String) -> [UInt8]? {
        let input = Array(s.utf8)
        guard let n = Base64URL.decodedCount(input.count) else { return nil }
        var out = [UInt8](repeating: 0, count: n)
        let written = input.withUnsafeBytes { i in out.withUnsafeMutableBytes { Base64URL.decode(i, into: $0.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 8)!) } }
        return written == nil ? nil : out
    }

    private func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    @Test func base64URLMatchesFoundationAndIsStrict() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<80 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(decode(encode(bytes)) == bytes, "length \(length)")
        }
        for bad in ["A", "AAAAA", "AA==", "AA=", "A+B/", "AB C", "AB.C", "ÿÿÿÿ", "AB\n"] {
            #expect(decode(bad) == nil, "\(bad)")
        }
        // Unused bits must be zero: "AB" and "AA" both start with 0x00 but only "AA" is canonical.
        #expect(decode("AA") == [0])
        #expect(decode("AB") == nil)
        #expect(decode("AAA") == [0, 0])
        #expect(decode("AAB") == nil)
    }

    private func skips(_ json: String) -> Bool {
        let bytes = Array(json.utf8)
        return bytes.withUnsafeBufferPointer { b in
            var s = JSONScanner(b)
            s.skipWhitespace()
            return s.skipValue() && s.atEndOfInput()
        }
    }

    @Test func scannerAcceptsExactlyValidJSON() {
        let valid = [
            "{}", "[]", "{\"a\":1}", " { \"a\" : [1, 2.5, -3e+2, true, false, null, \"x\\\"y\\u00e9\\ud83d\\ude00\"] } ",
            "{\"a\":{\"b\":{\"c\":[]}}}", "0", "-0", "1.0E-7", "\"\"", "[[[[1]]]]",
        ]
        let invalid = [
            "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul",
            "\"\\x\"", "\"\\u12\"", "\"a\nb\"", "{a:1}", "{\"a\":1}}", "'a'", "[" + String(repeating: "[", count: 40) + String(repeating: "]", count: 41),
        ]
        for j in valid {
            #expect(skips(j), "\(j)")
            #expect((try? JSONSerialization.jsonObject(with: Data(j.utf8), options: .fragmentsAllowed)) != nil, "reference: \(j)")
        }
        for j in invalid { #expect(!skips(j), "\(j)") }
    }

    @Test func escapedStringsDecodeAndLoneSurrogatesAreRefused() {
        func decoded(_ literal: String) -> [UInt8]? {
            Array(literal.utf8).withUnsafeBufferPointer { b in
                var s = JSONScanner(b)
                guard let t = s.readString() else { return nil }
                return s.decoded(t)
            }
        }
        #expect(decoded("\"a\\u0062c\"") == Array("abc".utf8))
        #expect(decoded("\"\\ud83d\\ude00\"") == Array("😀".utf8))
        #expect(decoded("\"\\n\\t\\/\\\\\"") == Array("\n\t/\\".utf8))
        #expect(decoded("\"\\ud83d\"") == nil)
        #expect(decoded("\"\\ude00\"") == nil)
    }

    @Test func numericDates() {
        func date(_ text: String) -> Int64? {
            Array(text.utf8).withUnsafeBufferPointer { b in
                var s = JSONScanner(b)
                return s.readNumericDate()
            }
        }
        #expect(date("1700000000") == 1_700_000_000)
        #expect(date("-5") == -5)
        #expect(date("1.7e9") == 1_700_000_000)
        #expect(date("1700000000.9") == 1_700_000_000)
        #expect(date("123456789012345678") == 123_456_789_012_345_678)
        #expect(date("99999999999999999999") == nil)
        #expect(date("1e400") == nil)
    }

    @Test func subjectUUIDs() {
        func uuid(_ text: String) -> UUID? {
            let quoted = Array("\"\(text)\"".utf8)
            return quoted.withUnsafeBufferPointer { b in
                var s = JSONScanner(b)
                return s.readString().flatMap { SupabaseClaims.uuid($0, in: s) }
            }
        }
        let u = UUID()
        #expect(uuid(u.uuidString) == u)
        #expect(uuid(u.uuidString.lowercased()) == u)
        for bad in ["", "not-a-uuid", u.uuidString + "0", String(u.uuidString.dropLast()), u.uuidString.replacingOccurrences(of: "-", with: "_"),
                    "g" + String(u.uuidString.dropFirst()), "{" + String(u.uuidString.dropFirst())] {
            #expect(uuid(bad) == nil, "\(bad)")
        }
    }
}
