import Foundation
import HubAuth
import Synchronization
import Testing

/// A JWKS endpoint stand-in: serves a document that the test can change, counts fetches, and
/// can fail or stall on demand.
final class FakeJWKSEndpoint: Sendable {
    private struct State {
        var document: [UInt8]
        var fetches = 0
        var failing = false
    }

    private let state: Mutex<State>
    let delay: Duration

    init(_ document: [UInt8], delay: Duration = .zero) {
        state = Mutex(State(document: document))
        self.delay = delay
    }

    var fetches: Int { state.withLock { $0.fetches } }
    func serve(_ document: [UInt8]) { state.withLock { $0.document = document } }
    func fail(_ on: Bool) { state.withLock { $0.failing = on } }

    @Sendable func fetch() async throws -> [UInt8] {
        let (doc, failing) = state.withLock { s in
            s.fetches += 1
            return (s.document, s.failing)
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        if failing { throw FixtureError("endpoint down") }
        return doc
    }
}

/// A monotonic clock the test advances by hand.
final class FakeClock: Sendable {
    private let t = Mutex(Duration.zero)
    func advance(_ d: Duration) { t.withLock { $0 += d } }
    @Sendable func now() -> Duration { t.withLock { $0 } }
}

@Suite struct JWTRefresherTests {
    @Test func unknownKidRefetchesOnceThenAcceptsAndTheRateLimitHolds() async throws {
        let m = try JWTFixtures.get()
        let endpoint = FakeJWKSEndpoint(m.jwksBytes("initial"))
        let clock = FakeClock()
        let v = try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: m.issuer))
        let refresher = JWKSRefresher(verifier: v, now: clock.now, fetch: endpoint.fetch)
        #expect(await refresher.refresh())
        #expect(v.keys.keyIDs == ["ec-1", "rsa-1"] && endpoint.fetches == 1)

        let newKid = try m.token("ES256/new-kid")
        #expect(v.verify(newKid, nowSeconds: m.now).rejection == .unknownKey)
        endpoint.serve(m.jwksBytes("rotated"))  // Supabase rotated since the last fetch
        clock.advance(.seconds(5))
        #expect(await refresher.refreshForUnknownKid() == false, "within 30 s of the last fetch")
        #expect(endpoint.fetches == 1)
        clock.advance(.seconds(26))
        #expect(await refresher.refreshForUnknownKid() == true)
        #expect(endpoint.fetches == 2)
        #expect(v.verify(newKid, nowSeconds: m.now).rejection == nil)
        #expect(v.verify(try m.token("ES256/valid"), nowSeconds: m.now).rejection == nil, "old kid still served")
        #expect(v.verify(try m.token("RS256/new-kid"), nowSeconds: m.now).rejection == nil)

        // A kid that never appears: a flood of them costs at most one fetch per 30 s.
        let bogus = try m.token("ES256/bogus-kid")
        for _ in 0..<200 {
            #expect(v.verify(bogus, nowSeconds: m.now).rejection == .unknownKey)
            #expect(await refresher.refreshForUnknownKid() == false)
        }
        #expect(endpoint.fetches == 2)
        clock.advance(.seconds(30))
        for _ in 0..<200 { #expect(await refresher.refreshForUnknownKid() == false) }
        #expect(endpoint.fetches == 3, "one refetch per window; nothing new in it")
        #expect(v.verify(bogus, nowSeconds: m.now).rejection == .unknownKey)
        #expect(await refresher.fetchCount == 3)
    }

    @Test func theSynchronousRequestFromALoopIsRateLimitedToo() async throws {
        let m = try JWTFixtures.get()
        let endpoint = FakeJWKSEndpoint(m.jwksBytes("initial"), delay: .milliseconds(50))
        let v = try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: m.issuer))
        let refresher = JWKSRefresher(verifier: v, minRefetchInterval: .seconds(3600), fetch: endpoint.fetch)
        for _ in 0..<10_000 { refresher.requestRefreshForUnknownKid() }
        for _ in 0..<500 where endpoint.fetches == 0 || v.keys.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(v.keys.keyIDs == ["ec-1", "rsa-1"])
        for _ in 0..<10_000 { refresher.requestRefreshForUnknownKid() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(endpoint.fetches == 1)
    }

    @Test func concurrentRequestsShareOneFetch() async throws {
        let m = try JWTFixtures.get()
        let endpoint = FakeJWKSEndpoint(m.jwksBytes("initial"), delay: .milliseconds(100))
        let v = try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: m.issuer))
        let refresher = JWKSRefresher(verifier: v, fetch: endpoint.fetch)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 { group.addTask { await refresher.refreshForUnknownKid() } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(endpoint.fetches == 1)
        #expect(results.allSatisfy { $0 }, "every waiter learns that new keys arrived")
    }

    @Test func aFailedOrUnchangedFetchKeepsTheCurrentKeys() async throws {
        let m = try JWTFixtures.get()
        let endpoint = FakeJWKSEndpoint(m.jwksBytes("initial"))
        let clock = FakeClock()
        let v = try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: m.issuer))
        let refresher = JWKSRefresher(verifier: v, now: clock.now, fetch: endpoint.fetch)
        #expect(await refresher.refresh())
        let before = v.keys
        let cache = VerifiedTokenCache()
        let token = try m.token("ES256/valid")
        #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)

        endpoint.fail(true)
        #expect(await refresher.refresh() == false)
        #expect(v.keys === before)
        #expect(await refresher.failureCount == 1)
        #expect(await refresher.lastError != nil)

        endpoint.fail(false)
        endpoint.serve(Array("{\"keys\": 7}".utf8))
        #expect(await refresher.refresh() == false)
        #expect(v.keys === before, "an unusable document changes nothing")

        endpoint.serve(m.jwksBytes("initial"))
        #expect(await refresher.refresh() == false)
        #expect(await refresher.lastError == nil)
        #expect(v.keys === before, "an identical document keeps the snapshot")
        #expect(v.verify(token, nowSeconds: m.now, cache: cache).rejection == nil)
        #expect(cache.hits == 1, "and the loops' cached verifications")
    }

    @Test func runRefreshesPeriodicallyUntilStopped() async throws {
        let m = try JWTFixtures.get()
        let endpoint = FakeJWKSEndpoint(m.jwksBytes("initial"))
        let v = try await SupabaseJWTVerifier(configuration: SupabaseJWTConfiguration(issuer: m.issuer))
        let refresher = JWKSRefresher(verifier: v, refreshInterval: .milliseconds(50), minRefetchInterval: .milliseconds(10), fetch: endpoint.fetch)
        let started = ContinuousClock.now
        await refresher.start()
        await refresher.start()  // idempotent
        // Waits for three periodic fetches (a loaded machine may stretch the 50 ms interval).
        while endpoint.fetches < 3, ContinuousClock.now - started < .seconds(10) { try await Task.sleep(for: .milliseconds(10)) }
        await refresher.stop()
        let elapsed = ContinuousClock.now - started
        let fetched = endpoint.fetches
        // At most one fetch per interval (plus the one at start): never a busy loop.
        let bound = Int(elapsed / .milliseconds(50)) + 2
        #expect(fetched >= 3 && fetched <= bound, "\(fetched) fetches in \(elapsed)")
        #expect(v.keys.keyIDs == ["ec-1", "rsa-1"])
        try await Task.sleep(for: .milliseconds(200))
        #expect(endpoint.fetches <= fetched + 1)
    }
}
