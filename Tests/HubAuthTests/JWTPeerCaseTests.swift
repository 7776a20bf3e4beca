import Foundation
import HubAuth
import Testing

/// Every case minted by PyJWT, against the verifier the case names.
@Suite struct JWTPeerCaseTests {
    @Test func everyMintedCaseGetsItsExpectedOutcome() async throws {
        let m = try JWTFixtures.get()
        var verifiers: [String: SupabaseJWTVerifier] = [:]
        for name in Set(m.cases.map(\.verifier)) { verifiers[name] = try await JWTFixtures.verifier(name, m) }
        var checked = 0
        for c in m.cases {
            let result = verifiers[c.verifier]!.verify(c.token, nowSeconds: m.now)
            switch (c.expect, result) {
            case ("accept", .success(let user)):
                #expect(user.userID == m.userID, "\(c.name)")
            case ("accept", .failure(let r)):
                Issue.record("\(c.name): expected accept, got \(r)")
            case ("reject", .success):
                Issue.record("\(c.name): expected \(c.reason ?? "?"), got accepted")
            case ("reject", .failure(let r)):
                #expect(r.reason.rawValue == c.reason, "\(c.name): \(r)")
            default:
                Issue.record("\(c.name): bad expectation \(c.expect)")
            }
            checked += 1
        }
        #expect(checked >= 180)
        print("JWT peer cases checked: \(checked) (\(m.cases.filter { $0.expect == "accept" }.count) accept, \(m.cases.filter { $0.expect == "reject" }.count) reject)")
    }

    @Test func exposedClaimsComeFromTheToken() async throws {
        let m = try JWTFixtures.get()
        let v = try await JWTFixtures.verifier("default", m)
        for alg in ["HS256", "ES256", "RS256"] {
            let user = try v.verify(try m.token("\(alg)/valid"), nowSeconds: m.now).get()
            #expect(user.userID == m.userID)
            #expect(user.expiresAt == m.now + 3600)
            #expect(user.email == "ann@example.com")
            #expect(user.sessionID == UUID(uuidString: m.session_id))
            #expect(user.isAnonymous == false)
            let manifest = try JSONSerialization.jsonObject(with: m.raw) as! [String: Any]
            let expected = manifest["app_metadata"] as! NSDictionary
            let json = try #require(user.appMetadataJSON)
            let got = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! NSDictionary
            #expect(got == expected, "\(alg): \(json)")
            #expect(!json.contains("user_metadata") && !json.contains("Ann"))

            #expect(try v.verify(try m.token("\(alg)/anonymous-user"), nowSeconds: m.now).get().isAnonymous)
            #expect(try v.verify(try m.token("\(alg)/session-id-not-uuid"), nowSeconds: m.now).get().sessionID == nil)
            #expect(try v.verify(try m.token("\(alg)/app-metadata-null"), nowSeconds: m.now).get().appMetadataJSON == nil)
            #expect(try v.verify(try m.token("\(alg)/exp-fraction"), nowSeconds: m.now).get().expiresAt == m.now + 3600)
        }
    }

    @Test func everyInputFormGivesTheSameAnswer() async throws {
        let m = try JWTFixtures.get()
        let v = try await JWTFixtures.verifier("default", m)
        for c in m.cases where c.verifier == "default" {
            let s = v.verify(c.token, nowSeconds: m.now)
            let sub = v.verify(("x" + c.token + "y").dropFirst().dropLast(), nowSeconds: m.now)
            let bytes = v.verify(Array(c.token.utf8), nowSeconds: m.now)
            #expect(s == sub && s == bytes, "\(c.name)")
        }
    }

    @Test func issuerCheckIsSkippedWithoutAnIssuer() async throws {
        let m = try JWTFixtures.get()
        let keys = try await JWKSKeys.parse(jwks: m.jwksBytes("initial"))
        let v = try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: nil), keys: keys)
        #expect(throws: Never.self) { try v.verify(try m.token("ES256/wrong-iss"), nowSeconds: m.now).get() }
        let strict = try await SupabaseJWTVerifier(configuration: .supabase(url: "https://abcdefghijklmnop.supabase.co/"), keys: keys)
        #expect(throws: Never.self) { try strict.verify(try m.token("ES256/valid"), nowSeconds: m.now).get() }
    }

    @Test func leewayIsConfigurable() async throws {
        let m = try JWTFixtures.get()
        let keys = try await JWKSKeys.parse(jwks: m.jwksBytes("initial"))
        let v = try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: m.issuer, leewaySeconds: 0), keys: keys)
        #expect(v.verify(try m.token("ES256/expired-within-leeway"), nowSeconds: m.now).rejection == .expired)
        #expect(v.verify(try m.token("ES256/nbf-within-leeway"), nowSeconds: m.now).rejection == .notYetValid)
        #expect(v.verify(try m.token("ES256/valid"), nowSeconds: m.now + 3599).rejection == nil)
        #expect(v.verify(try m.token("ES256/valid"), nowSeconds: m.now + 3600).rejection == .expired)
    }
}

extension Result where Failure == JWTRejection {
    var rejection: JWTRejection.Reason? {
        if case .failure(let r) = self { return r.reason }
        return nil
    }
}
