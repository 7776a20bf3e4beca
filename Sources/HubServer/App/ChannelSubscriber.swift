import HubIO
import HubStore
import Logging

/// A pub/sub subscription a node keeps for its whole life: subscribed at start, retried every
/// second while the store is away (a hub starts and serves what it can with its dependencies
/// down), cancelled at stop.
final class ChannelSubscriber: @unchecked Sendable {
    // @unchecked: `task` is written by start/stop only (the service group never runs them
    // concurrently); `subscription` is written by the task, which `stop()` awaits before
    // reading it.
    private let channel: String
    private let pubSub: any PubSub
    private let loop: EventLoop
    private let logger: Logger
    private let handler: @Sendable (PubSubMessage) -> Void
    private var task: Task<Void, Never>?
    private var subscription: (any PubSubSubscription)?

    init(channel: String, pubSub: any PubSub, loop: EventLoop, logger: Logger, handler: @escaping @Sendable (PubSubMessage) -> Void) {
        self.channel = channel
        self.pubSub = pubSub
        self.loop = loop
        self.logger = logger
        self.handler = handler
    }

    func start() {
        let channel = self.channel, pubSub = self.pubSub, handler = self.handler, log = self.logger
        task = Task(executorPreference: loop) { [weak self] in
            var attempt = 0
            while !Task.isCancelled {
                do {
                    self?.subscription = try await pubSub.subscribe(channel, handler: handler)
                    return
                } catch {
                    attempt += 1
                    if attempt == 1 || attempt % 30 == 0 {
                        log.warning("subscription pending; retrying", metadata: [
                            "channel": .string(channel), "error": .string("\(error)"), "attempt": .stringConvertible(attempt),
                        ])
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    func stop() async {
        task?.cancel()
        await task?.value
        task = nil
        subscription?.cancel()
        subscription = nil
    }
}
