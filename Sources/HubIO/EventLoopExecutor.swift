/// An event loop is a Swift executor, so async code can live on it.
///
/// - As a `TaskExecutor` it is the preferred executor of each request's task
///   (`Task(executorPreference: loop)`): nonisolated async code runs on the loop, and after an
///   `await` (a Redis reply, a PostgreSQL row) the task resumes on the same loop, with no hop
///   through the global pool. The connection's state, the loop's caches and the per-loop Redis
///   connection are therefore touched from one thread, without locks.
/// - As a `SerialExecutor` it can back an actor that must live on a loop (`unownedExecutor`).
///
/// A job queued from the loop's own thread is appended to the loop's job list and runs in the
/// same iteration; from another thread it wakes the loop through its eventfd.
extension EventLoop: SerialExecutor, TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        enqueueJob(UnownedJob(job))
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    public func isSameExclusiveExecutionContext(other: EventLoop) -> Bool {
        self === other
    }

    /// Lets `assumeIsolated` and isolation checks accept code running on this loop's thread.
    public func checkIsolated() {
        precondition(inLoop, "not on event loop \(index)")
    }
}
