import Foundation
import HubStore
import Testing

/// `RecordStore` conformance for listing diagnostic sessions page by page and finding the
/// pending ones whose approval window lapsed, on both backends.
@Suite("RecordStore conformance: session listing and expiry")
struct RecordSessionListingTests {
    /// The listing order: createdAt descending, then id descending (lowercase uuid text orders
    /// as PostgreSQL's uuids do).
    static func newestFirst(_ a: DiagnosticSession, _ b: DiagnosticSession) -> Bool {
        if a.createdAt != b.createdAt { return a.createdAt > b.createdAt }
        return a.id.uuidString.lowercased() > b.id.uuidString.lowercased()
    }

    /// Every page of `sessions(...)` with `limit`, following the cursor, concatenated; at most
    /// 100 pages, so that a cursor that does not advance fails the test instead of hanging it.
    static func allPages(_ store: any RecordStore, orgID: UUID, states: Set<SessionState>?, deviceID: UUID?, limit: Int) async throws -> [DiagnosticSession] {
        var out: [DiagnosticSession] = []
        var cursor: (createdAt: Date, id: UUID)?
        for _ in 0..<100 {
            let page = try await store.sessions(orgID: orgID, states: states, deviceID: deviceID, before: cursor, limit: limit)
            #expect(page.count <= limit)
            out += page
            guard let last = page.last, page.count == limit else { return out }
            cursor = (last.createdAt, last.id)
        }
        Issue.record("still paging after 100 pages of \(limit)")
        return out
    }

    @Test(arguments: Backend.recordBackends)
    func pagesFollowTheCursorWithoutGapsOrDuplicates(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let second = Device(orgID: f.org.id, name: "dev-2", createdAt: at(baseMillis))
            try await store.insertDevice(second)
            let stranger = try await RecordFixture.make(store, slug: "other")
            var sessions = [f.session]
            let states: [SessionState] = [.pendingApproval, .active, .closed, .rejected, .expired]
            for i in 0..<23 {
                let state = states[i % states.count]
                let decided = state == .active || state == .rejected
                // Groups of three share a createdAt, so the id decides within a group.
                let s = DiagnosticSession(orgID: f.org.id, deviceID: i % 3 == 0 ? second.id : f.device.id, requestedBy: UUID(), reason: "r\(i)",
                                          state: state, decidedBy: decided ? UUID() : nil, createdAt: at(baseMillis + Int64(i / 3) * 1_000))
                try await store.insertSession(s)
                sessions.append(s)
            }
            let expected = sessions.sorted(by: Self.newestFirst)
            for limit in [1, 4, 5, 24, 100] {
                let paged = try await Self.allPages(store, orgID: f.org.id, states: nil, deviceID: nil, limit: limit)
                #expect(paged.map(\.id) == expected.map(\.id), "limit \(limit)")
            }
            // Filters page the same way.
            let open: Set<SessionState> = [.pendingApproval, .active]
            #expect(try await Self.allPages(store, orgID: f.org.id, states: open, deviceID: nil, limit: 2).map(\.id)
                    == expected.filter { open.contains($0.state) }.map(\.id))
            #expect(try await Self.allPages(store, orgID: f.org.id, states: nil, deviceID: second.id, limit: 3).map(\.id)
                    == expected.filter { $0.deviceID == second.id }.map(\.id))
            #expect(try await Self.allPages(store, orgID: f.org.id, states: [.closed], deviceID: f.device.id, limit: 1).map(\.id)
                    == expected.filter { $0.state == .closed && $0.deviceID == f.device.id }.map(\.id))
            #expect(try await store.sessions(orgID: f.org.id, states: nil, deviceID: stranger.device.id, before: nil, limit: 10).isEmpty)
            #expect(try await store.sessions(orgID: stranger.org.id, states: nil, deviceID: nil, before: nil, limit: 10) == [stranger.session])
        }
    }

    @Test(arguments: Backend.recordBackends)
    func theCursorIsStrictAndSessionsCreatedMeanwhileDoNotShiftPages(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            var sessions = [f.session]
            for i in 1...5 {
                let s = DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: "r\(i)", createdAt: at(baseMillis + Int64(i)))
                try await store.insertSession(s)
                sessions.append(s)
            }
            let expected = sessions.sorted(by: Self.newestFirst)
            let first = try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: nil, limit: 2)
            #expect(first.map(\.id) == expected.prefix(2).map(\.id))
            // A session created between two page reads (newer than everything) does not appear
            // on the following pages, and nothing repeats.
            try await store.insertSession(DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: "new",
                                                            createdAt: at(baseMillis + 1_000)))
            let last = try #require(first.last)
            let rest = try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: (last.createdAt, last.id), limit: 100)
            #expect(rest.map(\.id) == expected.dropFirst(2).map(\.id))
            // Strictly before: the cursor row itself is not repeated, but a row with the same
            // createdAt and a smaller id comes next.
            let twin = DiagnosticSession(id: UUID(uuidString: "00000000-0000-0000-0000-000000000001")!, orgID: f.org.id, deviceID: f.device.id,
                                         requestedBy: UUID(), reason: "twin", createdAt: last.createdAt)
            try await store.insertSession(twin)
            let afterCursor = try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: (last.createdAt, last.id), limit: 1)
            #expect(afterCursor.map(\.id) == [twin.id])
            // A cursor date is kept to the millisecond, like every stored date.
            let sub = last.createdAt.addingTimeInterval(0.0004)
            #expect(try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: (sub, last.id), limit: 1).map(\.id) == [twin.id])
            await expectInvalidArgument("cursor date out of range") {
                _ = try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: (Date(timeIntervalSince1970: 1e15), last.id), limit: 1)
            }
        }
    }

    @Test(arguments: Backend.recordBackends)
    func expiredPendingSessionsEarliestExpiryFirst(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let now = at(baseMillis + 60_000)
            func insert(_ state: SessionState, expiresAt: Int64?) async throws -> DiagnosticSession {
                let s = DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: "r", state: state,
                                          decidedBy: state == .active || state == .rejected ? UUID() : nil,
                                          expiresAt: expiresAt.map(at), createdAt: at(baseMillis))
                try await store.insertSession(s)
                return s
            }
            let exact = try await insert(.pendingApproval, expiresAt: baseMillis + 60_000)
            let early = try await insert(.pendingApproval, expiresAt: baseMillis + 1_000)
            let future = try await insert(.pendingApproval, expiresAt: baseMillis + 60_001)
            _ = try await insert(.active, expiresAt: baseMillis + 1_000)
            _ = try await insert(.rejected, expiresAt: baseMillis + 1_000)
            _ = try await insert(.expired, expiresAt: baseMillis + 1_000)
            // The fixture's session has no expiresAt: it never lapses.
            #expect(f.session.expiresAt == nil)
            #expect(try await store.expiredPendingSessions(now: now, limit: 100) == [early, exact])
            #expect(try await store.expiredPendingSessions(now: now, limit: 1) == [early])
            #expect(try await store.expiredPendingSessions(now: at(baseMillis + 999), limit: 100).isEmpty)
            #expect(try await store.expiredPendingSessions(now: at(baseMillis + 60_001), limit: 100) == [early, exact, future])
            // Once expired by the reaper, a session is no longer pending.
            _ = try await store.updateSession(id: early.id, expected: [.pendingApproval], change: SessionChange(state: .expired))
            #expect(try await store.expiredPendingSessions(now: now, limit: 100).map(\.id) == [exact.id])
        }
    }
}
