import Foundation
import Testing
@testable import HubAuth

@Suite struct ActivationCodeTextTests {
    static let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    @Test func randomCodesAreTwelveCrockfordSymbols() {
        var seen = Set<Character>()
        var codes = Set<String>()
        for _ in 0..<500 {
            let code = ActivationCodeText.random()
            #expect(code.normalized.count == 12)
            #expect(code.normalized.allSatisfy { Self.alphabet.contains($0) })
            #expect(code.display.count == 14)
            #expect(code.display.split(separator: "-").map(\.count) == [4, 4, 4])
            #expect(ActivationCodeText(parsing: code.display) == code)
            seen.formUnion(code.normalized)
            codes.insert(code.normalized)
        }
        // 6,000 uniform symbols: missing any of the 32 has probability < 32·(31/32)^6000.
        #expect(seen == Self.alphabet)
        #expect(codes.count == 500)
    }

    @Test func parsingForgivesCaseSeparatorsAndLookalikes() throws {
        let code = try #require(ActivationCodeText(parsing: "7KQ2-M9XD-3HRT"))
        #expect(code.normalized == "7KQ2M9XD3HRT")
        #expect(ActivationCodeText(parsing: "7kq2m9xd3hrt") == code)
        #expect(ActivationCodeText(parsing: " 7kq2 - m9xd -- 3hrt ") == code)
        #expect(ActivationCodeText(parsing: "7-K-Q-2-M-9-X-D-3-H-R-T") == code)
        // O → 0, I and L → 1, in either case.
        #expect(ActivationCodeText(parsing: "OoIi-Ll00-1111")?.normalized == "001111001111")
    }

    @Test func parsingRejectsWhatIsNotACode() {
        #expect(ActivationCodeText(parsing: "") == nil)
        #expect(ActivationCodeText(parsing: "7KQ2-M9XD-3HR") == nil)        // 11 symbols
        #expect(ActivationCodeText(parsing: "7KQ2-M9XD-3HRTX") == nil)      // 13 symbols
        #expect(ActivationCodeText(parsing: "7KQ2-M9XD-3HRU") == nil)       // U is not in the alphabet
        #expect(ActivationCodeText(parsing: "7KQ2_M9XD_3HRT") == nil)       // only dashes and spaces are ignored
        #expect(ActivationCodeText(parsing: "7KQ2-M9XD-3HRТ") == nil)       // Cyrillic Т
        #expect(ActivationCodeText(parsing: "7KQ2M9XD3HRT" + String(repeating: " ", count: 60)) == nil)  // over 64 bytes
    }

    @Test func keyedHashIsPerKeyAndPerCodeButNotPerSpelling() throws {
        let code = try #require(ActivationCodeText(parsing: "7KQ2-M9XD-3HRT"))
        let spelled = try #require(ActivationCodeText(parsing: "7kq2 m9xd 3hrt"))
        let otherKey = try HashKey(text: String(repeating: "x", count: 64))
        #expect(code.keyedHash(testHashKey).count == 32)
        #expect(code.keyedHash(testHashKey) == spelled.keyedHash(testHashKey))
        #expect(code.keyedHash(testHashKey) != code.keyedHash(otherKey))
        #expect(code.keyedHash(testHashKey) != ActivationCodeText(parsing: "7KQ2-M9XD-3HRV")!.keyedHash(testHashKey))
        // It is the HMAC of the normalized text, not a plain hash.
        #expect(code.keyedHash(testHashKey) == HubCrypto.hmacSHA256(key: testHashKey.bytes, Array("7KQ2M9XD3HRT".utf8)))
        #expect(code.keyedHash(testHashKey) != HubCrypto.sha256("7KQ2M9XD3HRT"))
    }

    @Test func descriptionDoesNotRevealTheCode() throws {
        let code = try #require(ActivationCodeText(parsing: "7KQ2-M9XD-3HRT"))
        #expect(!"\(code)".contains("M9XD"))
        #expect(!"\(code)".contains("3HRT"))
    }
}
