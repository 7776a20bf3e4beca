/// Outcome of `TLSEngine.receive`: whether the peer is still talking.
public enum TLSReceiveStatus: Sendable, Equatable {
    /// All input was consumed; more may be needed (a partial record or handshake flight is kept).
    case ok
    /// The peer sent close_notify: it will send no more data. Answer with `shutdown()`, drain the
    /// ciphertext, then close the socket.
    case closed
}
