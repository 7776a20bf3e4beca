import Synchronization

/// Many independent commands sent at once and awaited together: they leave in the same loop
/// iteration (one `write` per connection), so N commands cost about one round trip, without a
/// task per command. On a cluster each goes to the shard owning its key, and the shards answer
/// in parallel. For bulk reads such as the lease queue's sweep of every bucket.
extension RedisClient {
    /// Sends every command in `commands`; returns their results in the same order. Any thread.
    public func sendAll(_ commands: [[RedisArgument]], timeout: Duration? = nil) async -> [Result<RedisValue, RedisError>] {
        await collect(commands.count) { i, done in self.send(commands[i], timeout: timeout, completion: done) }
    }

    /// `eval` for every (script, keys, args) in `calls`, sent at once; results in order.
    public func evalAll(_ calls: [(RedisScript, [RedisArgument], [RedisArgument])],
                        timeout: Duration? = nil) async -> [Result<RedisValue, RedisError>] {
        await collect(calls.count) { i, done in self.eval(calls[i].0, keys: calls[i].1, args: calls[i].2, timeout: timeout, completion: done) }
    }

    /// Starts `count` operations and resumes once every one has completed.
    private func collect(_ count: Int, _ start: @escaping (Int, @escaping RedisCompletion) -> Void) async -> [Result<RedisValue, RedisError>] {
        guard count > 0 else { return [] }
        return await withCheckedContinuation { continuation in
            // Completions may run on several loops (one per connection used), hence a lock;
            // this is a bulk path, taken once per command of a batch.
            let box = ResultsBox(count)
            for i in 0..<count {
                start(i) { result in
                    let finished: [Result<RedisValue, RedisError>]? = box.results.withLock { state in
                        state.values[i] = result
                        state.left -= 1
                        return state.left == 0 ? state.values : nil
                    }
                    if let finished { continuation.resume(returning: finished) }
                }
            }
        }
    }
}

/// Shares one `Mutex` between the completions of a batch (a `Mutex` cannot be captured by
/// escaping closures directly).
private final class ResultsBox: Sendable {
    let results: Mutex<(left: Int, values: [Result<RedisValue, RedisError>])>
    init(_ count: Int) { results = Mutex((count, Array(repeating: .failure(.notConnected), count: count))) }
}
