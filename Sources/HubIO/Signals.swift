import CHubShims

/// Process signals taken synchronously by one thread: SIGTERM, SIGINT and SIGHUP are blocked in
/// every thread (call `blockInAllThreads` before starting any), and a dedicated thread waits for
/// them, so nothing runs in async-signal context. SIGPIPE is ignored (sends use MSG_NOSIGNAL
/// anyway).
public enum SignalWaiter {
    public static func blockInAllThreads() {
        _ = hub_block_signals_for_threads()
    }

    /// Blocks until SIGTERM, SIGINT or SIGHUP arrives; returns its number.
    public static func wait() -> Int32 {
        hub_wait_signal()
    }
}
