import ArgumentParser
import Foundation
import HubHTTP
import HubIO
import HubRedis
import HubServer
import HubTelemetry
import Logging

/// `route-bench`: the hub's HTTP server with two routes that each do one Redis `GET`, built the
/// two ways the application layer can work, so that `wrk` measures them in the same run
/// (`tools/bench/redis-route-bench.sh`):
///
/// - `/bench/get/loop` — today's design: an async handler running in a task that prefers the
///   connection's loop, talking to Redis through that loop's own connection. No thread hop.
/// - `/bench/get/hop` — the design it replaced: a callback handler that starts an unstructured
///   task on the global pool, which sends through one Redis connection on loop 0 and answers
///   through the responder (loop → pool → loop 0 → pool → loop).
struct RouteBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "route-bench", abstract: "One-Redis-GET routes, hop-free and hopping.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port.") var port = 18090
    @Option(help: "Event loop threads.") var loops = 2
    @Option(help: "Redis URL.") var redisURL = "redis://127.0.0.1:6379/0"

    func run() throws {
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: .warning, sink: LogSink.standardError) }
        SignalWaiter.blockInAllThreads()
        var config = ServerConfig()
        config.host = host
        config.port = port
        config.loops = loops
        config.accessLog = false
        config.dataDirectory = NSTemporaryDirectory() + "route-bench-\(getpid())"
        let server = try HubServer(config: config, logger: Logger(label: "route-bench"))
        let redisConfig = try RedisConfiguration(url: redisURL)
        let perLoop = RedisClient(configuration: redisConfig, loops: server.loops)
        let single = RedisClient(configuration: redisConfig, loop: server.loops[0])
        let key: RedisArgument = "bench:value"

        server.application.route(.get, "/bench/get/loop", guard: .open) { _, _ in
            let value = try await perLoop.get(key) ?? []
            var r = Response(status: 200, body: value)
            r.headers.add(name: "Content-Type", value: "application/octet-stream")
            return r
        }
        server.application.route(.get, "/bench/get/hop") { _, responder in
            Task {
                let value = (try? await single.get(key)) ?? []
                var r = Response(status: 200, body: value)
                r.headers.add(name: "Content-Type", value: "application/octet-stream")
                responder.send(r)
            }
        }
        try server.start()
        perLoop.start()
        single.start()
        let seeded = DispatchSemaphore(value: 0)
        Task {
            _ = await perLoop.waitUntilConnected(timeout: .seconds(10))
            _ = await single.waitUntilConnected(timeout: .seconds(10))
            _ = try? await perLoop.send(["SET", key, RedisArgument(bytes: Array(repeating: UInt8(ascii: "x"), count: 32))])
            seeded.signal()
        }
        seeded.wait()
        print("ready \(server.httpPort)")
        fflush(stdout)
        while SignalWaiter.wait() == SIGHUP {}
        perLoop.close()
        single.close()
        server.drain(gracePeriod: 1)
    }
}

RouteBench.main()
