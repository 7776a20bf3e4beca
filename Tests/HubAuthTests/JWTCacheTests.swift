import Foundation
import HubAuth
import Testing

@Suite struct JWTCacheTests {
    @Test func cachedTokenAnswersUntilExpiryAndNotAfter() async throws {
        let m = try JWTFixtures.get()
        let v = try await JWTFixtures.verifier("default", m)
        for alg in ["HS256", "ES256", "RS256"] {
            let cache = VerifiedTokenCache()
            let token = try m.token("\(alg)/valid")
            let first = v.verify(token, nowSeconds: m.now, cache: cache)
            #expect(first.rejection == nil)
            #expect(cache.count == 1 && cache.misses == 1 && cache.hits == 0)
            // Leeway 30 s: the token (exp = now + 3600) answers up to now + 3629.
            for t in [m.now + 1, m.now + 1800, m.now + 3629] {
                #expect(v.verify(token, nowSeconds: t, cache: cache) == first, "\(alg) at +\(t - m.now)")
            }
            #expect(cache.hits == 3)
            #expect(v.verify(token, nowSeconds: m.now + 3630, cache: cache).rejection == .expired)
            #expect(cache.hits == 3 && cache.count == 0, "an expired entry never answers and is dropped")
        }
    }

    @Test func aTokenDifferingInOneByteIsNotAnsweredFromTheCache() async throws {
        let m = try JWTFixtures.get()
        let v = try await JWTFixtures.verifier("default", m)
        for alg in ["HS256", "ES256", "RS256"] {
            let cache = VerifiedTokenCache()
            let token = Array(try m.token("\(alg)/valid").utf8)
            #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)
            let dot1 = token.firstIndex(of: UInt8(ascii: "."))!
            let dot2 = token[(dot1 + 1)...].firstIndex(of: UInt8(ascii: "."))!
            // Positions in the header, the claims, and the signature; the first two keep the
            // last 32 bytes (the cache's hash input), so they land on the cached entry's set
            // and only the full comparison tells them apart.
            for position in [3, dot1 + 20, (dot1 + dot2) / 2, dot2 - 2, dot2 + 5, token.count - 1] {
                var variant = token
                variant[position] = variant[position] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
                let hits = cache.hits
                let result = v.verify(variant, nowSeconds: m.now + 1, cache: cache)
                #expect(result.rejection != nil, "\(alg): variant at \(position) accepted")
                #expect(cache.hits == hits)
            }
            #expect(v.verify(Array(token.dropLast()), nowSeconds: m.now + 1, cache: cache).rejection != nil)
            #expect(v.verify(token + [UInt8(ascii: "A")], nowSeconds: m.now + 1, cache: cache).rejection != nil)
            #expect(v.verify(token, nowSeconds: m.now + 1, cache: cache).rejection == nil)
            #expect(cache.count == 1)
        }
    }

    @Test func replacingKeysRetiresCachedVerifications() async throws {
        let m = try JWTFixtures.get()
        let v = try await JWTFixtures.verifier("default", m)
        let cache = VerifiedTokenCache()
        let token = try m.token("ES256/valid")
        #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)
        #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)
        #expect(cache.hits == 1)
        v.replaceKeys(try await JWKSKeys.parse(jwks: m.jwksBytes("new_only")))
        #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == .unknownKey, "ec-1 left the JWKS")
        v.replaceKeys(try await JWKSKeys.parse(jwks: m.jwksBytes("rotated")))
        #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)
        #expect(cache.hits == 1)
    }

    @Test func rejectedTokensAreNeverCached() async throws {
        let m = try JWTFixtures.get()
        let v = try await JWTFixtures.verifier("default", m)
        let cache = VerifiedTokenCache()
        for c in m.cases where c.verifier == "default" && c.expect == "reject" {
            _ = v.verify(c.token, nowSeconds: m.now, cache: cache)
        }
        #expect(cache.count == 0 && cache.hits == 0)
    }

    @Test func oneVerifiersEntriesDoNotAnswerForAnother() async throws {
        let m = try JWTFixtures.get()
        let withSecret = try await JWTFixtures.verifier("default", m)
        let withoutSecret = try await JWTFixtures.verifier("nosecret", m)
        let cache = VerifiedTokenCache()
        let token = try m.token("HS256/valid")
        #expect(withSecret.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)
        #expect(withoutSecret.verify(token, nowSeconds: m.now, cache: cache).rejection == .unsupportedAlgorithm)
    }

    @Test func theCacheIsBounded() async throws {
        let m = try JWTFixtures.get()
        let v = try await JWTFixtures.verifier("default", m)
        let cache = VerifiedTokenCache(capacity: 16)
        #expect(cache.capacity == 16)
        for token in m.bulk {
            #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)
        }
        #expect(cache.count <= 16)
        #expect(cache.evictions == m.bulk.count - cache.count)
        for token in m.bulk {
            #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)
        }
        #expect(cache.count <= 16)
        cache.removeAll()
        #expect(cache.count == 0)
        #expect(VerifiedTokenCache(capacity: 100).capacity == 128)
        #expect(VerifiedTokenCache().capacity == 16384)
    }
}
