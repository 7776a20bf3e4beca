import Atomics

/// The key snapshot a verifier uses, tagged with a process-wide unique epoch.
///
/// Why an atomic strong reference (swift-atomics `ManagedAtomic<KeyState>`) is safe and
/// lock-free for readers: its load increments a reader count and reads the pointer in one
/// double-word compare-and-swap, then retains the object before leaving, so a concurrent
/// `store` can never release a snapshot between a reader's load and its retain (the classic
/// use-after-free of swapping a raw `Unmanaged` pointer). Readers never block or wait for the
/// writer; replacements are rare (a JWKS refresh that changed something).
///
/// The epoch tags `VerifiedTokenCache` entries: it differs for every snapshot installed in any
/// verifier (a global counter), so an entry answers only under the exact verifier and keys that
/// produced it, and a cache shared by mistake between two verifiers can never cross-answer.
final class KeyState: AtomicReference, Sendable {
    let keys: JWKSKeys
    let epoch: UInt64

    private static let counter = ManagedAtomic<UInt64>(0)

    init(keys: JWKSKeys) {
        self.keys = keys
        epoch = Self.counter.loadThenWrappingIncrement(ordering: .relaxed) &+ 1
    }
}
