import Foundation
import HubAuth
import Testing

@Suite struct JWTKeysTests {
    @Test func usableKeysAreKeptAndTheRestReported() async throws {
        let m = try JWTFixtures.get()
        let keys = try await JWKSKeys.parse(jwks: m.jwksBytes("initial"))
        #expect(keys.keyIDs == m.expected_kids)
        #expect(keys.skipped.map(\.keyID) == m.expected_skipped, "\(keys.skipped)")
        let rotated = try await JWKSKeys.parse(jwks: m.jwksBytes("rotated"))
        #expect(rotated.keyIDs == ["ec-1", "ec-2", "rsa-1", "rsa-2"] && rotated.skipped.isEmpty)
        let newOnly = try await JWKSKeys.parse(jwks: m.jwksBytes("new_only"))
        #expect(newOnly.keyIDs == ["ec-2", "rsa-2"])
    }

    @Test func documentsThatAreNotAJWKSAreRefused() async throws {
        for bad in ["", "[]", "{}", "{\"keys\": 5}", "{\"keys\": [", "not json"] {
            await #expect(throws: JWKSKeys.DocumentError.self, "\(bad)") { try await JWKSKeys.parse(jwks: Array(bad.utf8)) }
        }
        await #expect(throws: JWKSKeys.DocumentError.self) {
            try await JWKSKeys.parse(jwks: Array(repeating: UInt8(ascii: " "), count: JWKSKeys.maxDocumentBytes + 1))
        }
        let empty = try await JWKSKeys.parse(jwks: Array("{\"keys\": []}".utf8))
        #expect(empty.isEmpty && empty.skipped.isEmpty)
        let junk = try await JWKSKeys.parse(jwks: Array("{\"keys\": [5, \"x\", {\"kty\": \"EC\", \"kid\": \"k\"}]}".utf8))
        #expect(junk.isEmpty && junk.skipped.count == 3)
    }

    @Test func sameKeysAreRecognisedWhateverTheOrder() async throws {
        let m = try JWTFixtures.get()
        let a = try await JWKSKeys.parse(jwks: m.jwksBytes("initial"))
        let b = try await JWKSKeys.parse(jwks: m.jwksBytes("initial"))
        #expect(a.hasSameKeys(as: b))
        #expect(!a.hasSameKeys(as: try await JWKSKeys.parse(jwks: m.jwksBytes("rotated"))))
        #expect(!a.hasSameKeys(as: .empty))
        let doc = try JSONSerialization.jsonObject(with: Data(m.jwks["rotated"]!.utf8)) as! [String: [Any]]
        let reversed = try JSONSerialization.data(withJSONObject: ["keys": Array(doc["keys"]!.reversed())])
        let r1 = try await JWKSKeys.parse(jwks: m.jwksBytes("rotated"))
        let r2 = try await JWKSKeys.parse(jwks: Array(reversed))
        #expect(r1.hasSameKeys(as: r2))
    }

    @Test func badConfigurationsAreRefused() async throws {
        await #expect(throws: SupabaseJWTConfiguration.Invalid.self) {
            try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: nil, hs256Secret: "too-short"))
        }
        await #expect(throws: SupabaseJWTConfiguration.Invalid.self) {
            try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: nil, maxTokenBytes: 10))
        }
        await #expect(throws: SupabaseJWTConfiguration.Invalid.self) {
            try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: nil, leewaySeconds: -1))
        }
        let c = SupabaseJWTConfiguration.supabase(url: "https://ref.supabase.co//", hs256Secret: String(repeating: "s", count: 40))
        #expect(c.issuer == "https://ref.supabase.co/auth/v1")
        #expect(!c.description.contains("sss"), "the secret never appears in descriptions")
    }
}
