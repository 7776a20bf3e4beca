import ArgumentParser
import Foundation
import HubIO
import HubServer
import HubTelemetry
import HubWebSocket
import HubWebSocketIO
import Logging

/// `ws-echo`: a WebSocket echo server on the hub's engine, for conformance (Autobahn) and
/// benchmarks. Every data message on `/` is echoed back (text as text, binary as binary);
/// permessage-deflate is accepted when offered. With `--broadcast`, a connection on `/pub`
/// publishes each of its messages to every connection on `/` through the fan-out primitive.
struct WSEcho: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ws-echo", abstract: "WebSocket echo server on the DeviceHub engine.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port).") var port = 9001
    @Option(help: "Event loop threads.") var loops = 1
    @Flag(help: "Publish messages from /pub to every connection on /.") var broadcast = false
    @Option(help: "Largest message in bytes (Autobahn's 9.x cases send 16 MiB).") var maxMessageBytes = 64 << 20
    @Flag(inversion: .prefixedNo, help: "Accept permessage-deflate offers.") var deflate = true
    @Option(help: "Log level.") var logLevel = "warning"

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .warning
        let sink = LogSink.standardError
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level, sink: sink) }
        SignalWaiter.blockInAllThreads()
        var config = ServerConfig()
        config.host = host
        config.port = port
        config.loops = loops
        config.accessLog = false
        config.logLevel = level
        let server = try HubServer(config: config, logger: Logger(label: "ws-echo"))
        var settings = WebSocketSettings()
        settings.limits = WebSocketLimits(maxFrameBytes: maxMessageBytes, maxMessageBytes: maxMessageBytes)
        var policy = HandshakePolicy()
        if !deflate { policy.deflate = nil }
        let broadcaster = Broadcaster(loops: server.loops)
        let broadcasting = broadcast

        server.application.route(.get, "/") { ctx, responder in
            responder.send(WebSocketUpgrade.respond(to: ctx, policy: policy, settings: settings) { _ in
                broadcasting ? Subscriber(broadcaster: broadcaster) as WebSocketDelegate : Echo()
            })
        }
        if broadcast {
            server.application.route(.get, "/pub") { ctx, responder in
                responder.send(WebSocketUpgrade.respond(to: ctx, policy: policy, settings: settings) { _ in Publisher(broadcaster: broadcaster) })
            }
        }
        try server.start()
        while true {
            let sig = SignalWaiter.wait()
            if sig == SIGHUP { continue }
            server.drain(gracePeriod: 2)
            return
        }
    }
}

/// Echoes every message back as it came.
final class Echo: WebSocketDelegate {
    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) { ws.send(.text, payload: text) }
    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) { ws.send(.binary, payload: binary) }
}

/// A `/` connection in broadcast mode: receives what publishers send.
final class Subscriber: WebSocketDelegate {
    let broadcaster: Broadcaster
    init(broadcaster: Broadcaster) { self.broadcaster = broadcaster }
    func webSocketOpened(_ ws: WebSocketConnection) { broadcaster.group(for: ws.channel.loop).add(ws) }
    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {}
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        broadcaster.group(for: ws.channel.loop).remove(ws)
    }
}

/// A `/pub` connection: each message goes to every subscriber, encoded once.
final class Publisher: WebSocketDelegate {
    let broadcaster: Broadcaster
    init(broadcaster: Broadcaster) { self.broadcaster = broadcaster }
    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer) {
        broadcaster.publish(.text, payload: text, from: ws.channel.loop)
    }
    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {
        broadcaster.publish(.binary, payload: binary, from: ws.channel.loop)
    }
}

WSEcho.main()
