import Foundation
import HubStore
import Synchronization

/// A stream of store calls kept running while a test kills and restarts a backend: each round
/// is timed and classified, so the test can assert that every failure was a transient
/// `StoreError` that came back promptly, and that the calls succeed again afterwards.
final class FaultLoad: Sendable {
    struct Outcome: Sendable {
        var error: StoreError?
        /// A wrong value read back, or an error that is not a `StoreError`.
        var unexpected: String?
        var duration: Duration
    }

    /// Shared with the worker task (an `Atomic` cannot be copied into its closure).
    private final class StopFlag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    private let stop = StopFlag()
    private let worker: Task<[Outcome], Never>

    /// Starts calling `round(n)` for n = 1, 2, ...; a round returns a complaint (or nil) and
    /// may throw. After a failed round the loop pauses `backoff`, as a caller would.
    init(backoff: Duration, _ round: @escaping @Sendable (Int) async throws -> String?) {
        let stop = self.stop
        worker = Task {
            var outcomes: [Outcome] = []
            var n = 0
            while !stop.raised.load(ordering: .acquiring) {
                n += 1
                let started = ContinuousClock.now
                var outcome = Outcome(duration: .zero)
                do {
                    outcome.unexpected = try await round(n)
                } catch let error as StoreError {
                    outcome.error = error
                } catch {
                    outcome.unexpected = "untyped error \(error)"
                }
                outcome.duration = ContinuousClock.now - started
                outcomes.append(outcome)
                if outcome.error != nil { try? await Task.sleep(for: backoff) }
            }
            return outcomes
        }
    }

    /// Stops the loop and returns every round's outcome, in order.
    func finish() async -> [Outcome] {
        stop.raised.store(true, ordering: .releasing)
        return await worker.value
    }
}
