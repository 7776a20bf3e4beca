import Foundation
import HubStore
import Testing

/// `RecordStore` conformance, part 2: devices, activation codes and sessions, on both backends.
@Suite("RecordStore conformance: devices, activation codes, sessions")
struct RecordDeviceConformanceTests {
    @Test(arguments: Backend.recordBackends)
    func deviceRoundTripsEveryField(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let device = Device(orgID: f.org.id, name: "edge-01", state: .active, secretHash: Array(0...255).map(UInt8.init),
                                lastSeenAt: at(baseMillis + 5), agentVersion: "1.2.3", metadata: #"{"rack": "b2", "tags": ["x", 1, null], "n": 1.5}"#,
                                createdAt: at(baseMillis), updatedAt: at(baseMillis + 9))
            try await store.insertDevice(device)
            let read = try #require(try await store.device(id: device.id))
            #expect(read.canonical == device.canonical)
            #expect(try await store.device(id: UUID()) == nil)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func devicesPageByNameThenID(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let other = Org(name: "Other", slug: "other")
            try await store.insertOrg(other)
            try await store.insertDevice(Device(orgID: other.id, name: "aaa"))
            var all = [f.device]
            for name in ["b", "a", "B", "a", "c", "é", "a-1"] {
                let d = Device(orgID: f.org.id, name: name, createdAt: at(baseMillis))
                try await store.insertDevice(d)
                all.append(d)
            }
            // Byte-wise (name, id) order on both backends.
            let expected = all.sorted { ($0.name.utf8.lexicographicallyPrecedes($1.name.utf8)) || ($0.name == $1.name && $0.id.uuidString.lowercased() < $1.id.uuidString.lowercased()) }
            var pages: [[Device]] = []
            var cursor: (name: String, id: UUID)?
            while true {
                let page = try await store.devices(orgID: f.org.id, state: nil, after: cursor, limit: 3)
                if page.isEmpty { break }
                pages.append(page)
                cursor = page.last.map { ($0.name, $0.id) }
            }
            #expect(pages.map(\.count) == [3, 3, 2])
            #expect(pages.flatMap { $0 }.map(\.id) == expected.map(\.id))
        }
    }

    @Test(arguments: Backend.recordBackends)
    func devicesFilteredByStatePageByNameThenID(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store) // its device "dev-1" is provisioned
            let other = Org(name: "Other", slug: "other")
            try await store.insertOrg(other)
            try await store.insertDevice(Device(orgID: other.id, name: "a", state: .active, secretHash: [1]))
            var active: [Device] = []
            for (i, name) in ["d", "a", "c", "a", "b"].enumerated() {
                let d = Device(orgID: f.org.id, name: name, state: .active, secretHash: [UInt8(i + 1)], createdAt: at(baseMillis))
                try await store.insertDevice(d)
                active.append(d)
            }
            let disabled = Device(orgID: f.org.id, name: "a", state: .disabled, createdAt: at(baseMillis))
            try await store.insertDevice(disabled)
            // Moving a device out of the state takes it out of the listing.
            let leaving = active.removeLast()
            _ = try await store.updateDevice(id: leaving.id, expected: nil, change: DeviceChange(state: .disabled))

            let expected = active.sorted { ($0.name.utf8.lexicographicallyPrecedes($1.name.utf8)) || ($0.name == $1.name && $0.id.uuidString.lowercased() < $1.id.uuidString.lowercased()) }
            var pages: [[Device]] = []
            var cursor: (name: String, id: UUID)?
            while true {
                let page = try await store.devices(orgID: f.org.id, state: .active, after: cursor, limit: 3)
                if page.isEmpty { break }
                pages.append(page)
                cursor = page.last.map { ($0.name, $0.id) }
            }
            #expect(pages.map(\.count) == [3, 1])
            #expect(pages.flatMap { $0 }.map(\.id) == expected.map(\.id))
            #expect(try await store.devices(orgID: f.org.id, state: .provisioned, after: nil, limit: 10).map(\.id) == [f.device.id])
            let disabledIDs = try await store.devices(orgID: f.org.id, state: .disabled, after: nil, limit: 10).map(\.id)
            #expect(Set(disabledIDs) == [disabled.id, leaving.id])
            #expect(try await store.devices(orgID: f.org.id, state: nil, after: nil, limit: 100).count == 7)
            // A cursor past every match, and an org without such devices.
            #expect(try await store.devices(orgID: f.org.id, state: .active, after: ("zzz", UUID()), limit: 10).isEmpty)
            #expect(try await store.devices(orgID: other.id, state: .disabled, after: nil, limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func conditionalDeviceUpdate(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let change = DeviceChange(state: .active, secretHash: [1, 2, 3], lastSeenAt: at(baseMillis + 10), agentVersion: "2.0",
                                      metadata: #"{"a": 1}"#, updatedAt: at(baseMillis + 11))
            guard case .updated(let updated) = try await store.updateDevice(id: f.device.id, expected: [.provisioned], change: change) else {
                Issue.record("expected updated"); return
            }
            var expected = f.device
            expected.state = .active
            expected.secretHash = [1, 2, 3]
            expected.lastSeenAt = at(baseMillis + 10)
            expected.agentVersion = "2.0"
            expected.metadata = #"{"a":1}"#
            expected.updatedAt = at(baseMillis + 11)
            #expect(updated.canonical == expected.canonical)
            #expect(try await store.device(id: f.device.id)?.canonical == expected.canonical)

            // Not in an expected state: unchanged, current row returned.
            let again = try await store.updateDevice(id: f.device.id, expected: [.provisioned], change: DeviceChange(name: "renamed"))
            guard case .conflict(let current) = again else { Issue.record("expected conflict, got \(again)"); return }
            #expect(current.canonical == expected.canonical)
            #expect(try await store.updateDevice(id: UUID(), expected: nil, change: DeviceChange(name: "x")) == .notFound)
            // nil: any state. Only the given fields change.
            guard case .updated(let renamed) = try await store.updateDevice(id: f.device.id, expected: nil, change: DeviceChange(name: "renamed", updatedAt: at(baseMillis + 12))) else {
                Issue.record("expected updated"); return
            }
            #expect(renamed.name == "renamed")
            #expect(renamed.secretHash == [1, 2, 3])
            #expect(renamed.updatedAt == at(baseMillis + 12))
        }
    }

    @Test(arguments: Backend.recordBackends)
    func activationCodeLifecycle(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let hash: [UInt8] = [0, 0, 255, 0, 7]
            let code = ActivationCode(orgID: f.org.id, deviceID: f.device.id, codeHash: hash, expiresAt: at(baseMillis + 60_000),
                                      attempts: 1, maxAttempts: 4, createdBy: UUID(), createdAt: at(baseMillis))
            try await store.insertActivationCode(code)
            #expect(try await store.redeemActivationCode(codeHash: [9, 9], now: at(baseMillis + 1)) == .notFound)
            #expect(try await store.redeemActivationCode(codeHash: hash, now: at(baseMillis + 60_000)) == .expired(code))
            var used = code
            used.usedAt = at(baseMillis + 59_999)
            #expect(try await store.redeemActivationCode(codeHash: hash, now: at(baseMillis + 59_999)) == .redeemed(used))
            #expect(try await store.redeemActivationCode(codeHash: hash, now: at(baseMillis + 59_999)) == .alreadyUsed(used))

            // A duplicate hash is a conflict; an unknown device is invalid.
            let dup = await storeError { try await store.insertActivationCode(ActivationCode(orgID: f.org.id, deviceID: f.device.id, codeHash: hash, expiresAt: at(baseMillis + 1000), createdAt: at(baseMillis))) }
            #expect(dup?.isConflict == true, "\(String(describing: dup))")
            let orphan = await storeError { try await store.insertActivationCode(ActivationCode(orgID: f.org.id, deviceID: UUID(), codeHash: [42], expiresAt: at(baseMillis + 1000), createdAt: at(baseMillis))) }
            #expect(orphan?.isInvalidArgument == true, "\(String(describing: orphan))")
        }
    }

    @Test(arguments: Backend.recordBackends)
    func oneLiveCodePerDevice(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let first = ActivationCode(orgID: f.org.id, deviceID: f.device.id, codeHash: [1], expiresAt: at(baseMillis + 60_000), createdAt: at(baseMillis))
            let second = ActivationCode(orgID: f.org.id, deviceID: f.device.id, codeHash: [2], expiresAt: at(baseMillis + 60_000), createdAt: at(baseMillis + 5))
            try await store.insertActivationCode(first)
            try await store.insertActivationCode(second)
            guard case .alreadyUsed(let old) = try await store.redeemActivationCode(codeHash: [1], now: at(baseMillis + 10)) else {
                Issue.record("the first code should have been retired"); return
            }
            #expect(old.usedAt == at(baseMillis + 5))
            guard case .redeemed = try await store.redeemActivationCode(codeHash: [2], now: at(baseMillis + 10)) else {
                Issue.record("the second code should be live"); return
            }
        }
    }

    @Test(arguments: Backend.recordBackends)
    func concurrentRedeemsHaveOneWinner(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let hash = Array("the-code".utf8)
            try await store.insertActivationCode(ActivationCode(orgID: f.org.id, deviceID: f.device.id, codeHash: hash, expiresAt: Date().addingTimeInterval(60)))
            let results = try await withThrowingTaskGroup(of: ActivationRedemption.self) { group in
                for _ in 0..<10 { group.addTask { try await store.redeemActivationCode(codeHash: hash, now: Date()) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = results.filter { if case .redeemed = $0 { return true } else { return false } }
            let losers = results.filter { if case .alreadyUsed = $0 { return true } else { return false } }
            #expect(winners.count == 1)
            #expect(losers.count == 9)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func sessionRoundTripAndOrder(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let full = DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: "why not",
                                         state: .rejected, decidedBy: UUID(), decidedAt: at(baseMillis + 2), decisionNote: "no",
                                         expiresAt: at(baseMillis + 3), closedAt: at(baseMillis + 4), createdAt: at(baseMillis + 100), updatedAt: at(baseMillis + 101))
            try await store.insertSession(full)
            #expect(try await store.session(id: full.id) == full)
            #expect(try await store.session(id: UUID()) == nil)
            let later = DiagnosticSession(orgID: f.org.id, deviceID: f.device.id, requestedBy: UUID(), reason: "later", createdAt: at(baseMillis + 200))
            try await store.insertSession(later)

            #expect(try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: nil, limit: 10).map(\.id) == [later.id, full.id, f.session.id])
            #expect(try await store.sessions(orgID: f.org.id, states: nil, deviceID: nil, before: nil, limit: 2).map(\.id) == [later.id, full.id])
            #expect(try await store.sessions(orgID: f.org.id, states: [.pendingApproval], deviceID: nil, before: nil, limit: 10).map(\.id) == [later.id, f.session.id])
            #expect(try await store.sessions(orgID: f.org.id, states: [.rejected, .closed], deviceID: nil, before: nil, limit: 10).map(\.id) == [full.id])
            #expect(try await store.sessions(orgID: f.org.id, states: [], deviceID: nil, before: nil, limit: 10).isEmpty)

            let unknownDevice = await storeError { try await store.insertSession(DiagnosticSession(orgID: f.org.id, deviceID: UUID(), requestedBy: UUID(), reason: "x")) }
            #expect(unknownDevice?.isInvalidArgument == true)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func conditionalSessionUpdate(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let approver = UUID()
            let change = SessionChange(state: .active, decidedBy: approver, decidedAt: at(baseMillis + 1), decisionNote: "ok",
                                       expiresAt: at(baseMillis + 3_600_000), updatedAt: at(baseMillis + 1))
            guard case .updated(let s) = try await store.updateSession(id: f.session.id, expected: [.pendingApproval], change: change) else {
                Issue.record("expected updated"); return
            }
            var expected = f.session
            expected.state = .active
            expected.decidedBy = approver
            expected.decidedAt = at(baseMillis + 1)
            expected.decisionNote = "ok"
            expected.expiresAt = at(baseMillis + 3_600_000)
            expected.updatedAt = at(baseMillis + 1)
            #expect(s == expected)
            #expect(try await store.updateSession(id: f.session.id, expected: [.pendingApproval], change: change) == .conflict(current: expected))
            #expect(try await store.updateSession(id: UUID(), expected: [.pendingApproval], change: change) == .notFound)
        }
    }

    @Test(arguments: Backend.recordBackends)
    func concurrentApprovalsHaveOneWinner(_ backend: Backend) async throws {
        try await withRecordStore(backend) { store in
            let f = try await RecordFixture.make(store)
            let sessionID = f.session.id
            let results = try await withThrowingTaskGroup(of: RecordUpdate<DiagnosticSession>.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await store.updateSession(id: sessionID, expected: [.pendingApproval],
                                                      change: SessionChange(state: .active, decidedBy: UUID(), decidedAt: Date()))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let updated = results.compactMap { if case .updated(let s) = $0 { return s } else { return nil } }
            let conflicts = results.compactMap { if case .conflict(let s) = $0 { return s } else { return nil } }
            #expect(updated.count == 1)
            #expect(conflicts.count == 9)
            #expect(conflicts.allSatisfy { $0.state == .active && $0.decidedBy == updated.first?.decidedBy })
        }
    }
}
