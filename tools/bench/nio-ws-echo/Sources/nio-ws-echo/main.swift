// nio-ws-echo: the SwiftNIO peer of DeviceHub's tools/ws-echo for tools/bench/ws-bench.sh.
//
// Adapted from swift-nio's `NIOWebSocketServer` example (Sources/NIOWebSocketServer): the same
// HTTP/1.1 server pipeline with a WebSocket upgrader, but instead of sending the time every
// second it behaves like ws-echo:
//
//   - a connection upgraded on `/` echoes every data frame (opcode, FIN and payload kept);
//   - with --broadcast, a connection on `/` is a subscriber (it only listens) and a
//     connection on `/pub` publishes every data frame to all subscribers.
//
// Two APIs, chosen with --api:
//   - `handlers` (default, used for the ratios): ChannelInboundHandlers, writes batched and
//     flushed once per read burst (`channelReadComplete`), broadcast payload shared by
//     reference (one ByteBuffer, NIO's frame encoder writes header + payload per subscriber).
//     This is the fastest idiomatic NIO code we know how to write, so the strongest peer.
//   - `async`: the example's own style (NIOTypedWebSocketServerUpgrader + NIOAsyncChannel,
//     one task per connection). Echo only.
//
// Usage: nio-ws-echo [--host 127.0.0.1] [--port 9102] [--loops 1] [--broadcast] [--api handlers|async]

import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var host = "127.0.0.1"
    var port = 9102
    var loops = 1
    var broadcast = false
    var api = "handlers"
    var maxFrameSize = 1 << 20

    static func parse() -> Options {
        var o = Options()
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let a = args.next() {
            switch a {
            case "--host": o.host = args.next()!
            case "--port": o.port = Int(args.next()!)!
            case "--loops": o.loops = Int(args.next()!)!
            case "--broadcast": o.broadcast = true
            case "--api": o.api = args.next()!
            case "--max-frame-size": o.maxFrameSize = Int(args.next()!)!
            default:
                fputs("usage: nio-ws-echo [--host H] [--port N] [--loops N] [--broadcast] [--api handlers|async]\n", stderr)
                exit(2)
            }
        }
        return o
    }
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit (10,000 idle connections).
func raiseNoFile() {
    var rl = rlimit()
    if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0, rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
}

// MARK: - handlers API

/// Pings, pongs and closes, shared by every WebSocket handler below.
/// Returns true when the frame was a control frame and has been dealt with.
func handleControl(_ frame: WebSocketFrame, context: ChannelHandlerContext) -> Bool {
    switch frame.opcode {
    case .ping:
        let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
        context.write(NIOAny(pong), promise: nil)
        return true
    case .pong:
        return true
    case .connectionClose:
        // Echo the peer's close code (RFC 6455 §5.5.1) and close once it is written.
        var data = frame.unmaskedData
        let code = data.readSlice(length: 2) ?? ByteBuffer()
        let close = WebSocketFrame(fin: true, opcode: .connectionClose, data: code)
        let ctx = context
        context.writeAndFlush(NIOAny(close)).whenComplete { _ in ctx.close(promise: nil) }
        return true
    case .text, .binary, .continuation:
        return false
    default:
        context.close(promise: nil)
        return true
    }
}

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if handleControl(frame, context: context) { return }
        let echo = WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)
        context.write(wrapOutboundOut(echo), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// Subscribers of the one event loop (broadcast mode runs with --loops 1, so every
/// subscriber and publisher lives on that loop and no locking is needed).
final class Hub: @unchecked Sendable {
    private var members: [SubscriberHandler] = []

    func add(_ s: SubscriberHandler) {
        guard s.slot < 0 else { return }
        s.slot = members.count
        members.append(s)
    }

    func remove(_ s: SubscriberHandler) {
        let slot = s.slot
        guard slot >= 0, slot < members.count, members[slot] === s else { return }
        let last = members.removeLast()
        if slot < members.count {
            members[slot] = last
            last.slot = slot
        }
        s.slot = -1
    }

    /// Queues `frame` on every subscriber (the payload ByteBuffer is shared, not copied).
    func publish(_ frame: WebSocketFrame) {
        let any = NIOAny(frame)
        for s in members { s.context?.write(any, promise: nil) }
    }

    func flushAll() {
        for s in members { s.context?.flush() }
    }
}

final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    let hub: Hub
    var slot = -1
    var context: ChannelHandlerContext?
    init(hub: Hub) { self.hub = hub }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        hub.add(self)
    }
    func handlerRemoved(context: ChannelHandlerContext) {
        hub.remove(self)
        self.context = nil
    }
    func channelInactive(context: ChannelHandlerContext) {
        hub.remove(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        _ = handleControl(unwrapInboundIn(data), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

final class PublisherHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    let hub: Hub
    private var published = false
    init(hub: Hub) { self.hub = hub }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if handleControl(frame, context: context) { return }
        hub.publish(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData))
        published = true
    }

    /// One flush per subscriber per read burst of the publisher (many frames per write).
    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        if published {
            published = false
            hub.flushAll()
        }
    }
}

func runHandlers(_ o: Options, group: MultiThreadedEventLoopGroup) async throws {
    let hub = Hub()
    let broadcast = o.broadcast
    let maxFrameSize = o.maxFrameSize
    let bootstrap = ServerBootstrap(group: group)
        .serverChannelOption(ChannelOptions.backlog, value: 1024)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            let upgrader = NIOWebSocketServerUpgrader(
                maxFrameSize: maxFrameSize,
                shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                upgradePipelineHandler: { channel, head in
                    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
                    let handler: ChannelHandler
                    if broadcast && path == "/pub" {
                        handler = PublisherHandler(hub: hub)
                    } else if broadcast {
                        handler = SubscriberHandler(hub: hub)
                    } else {
                        handler = EchoHandler()
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                })
            return channel.pipeline.configureHTTPServerPipeline(
                withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
        }
    let channel = try await bootstrap.bind(host: o.host, port: o.port).get()
    fputs("nio-ws-echo (handlers) listening on \(channel.localAddress!)\n", stderr)
    try await channel.closeFuture.get()
}

// MARK: - async API (the example's style)

enum UpgradeResult {
    case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
    case notUpgraded
}

func runAsync(_ o: Options, group: MultiThreadedEventLoopGroup) async throws {
    let maxFrameSize = o.maxFrameSize
    let channel: NIOAsyncChannel<EventLoopFuture<UpgradeResult>, Never> = try await ServerBootstrap(group: group)
        .serverChannelOption(ChannelOptions.backlog, value: 1024)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .bind(host: o.host, port: o.port) { channel in
            channel.eventLoop.makeCompletedFuture {
                let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                    maxFrameSize: maxFrameSize,
                    shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            UpgradeResult.websocket(try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel))
                        }
                    })
                let config = NIOTypedHTTPServerUpgradeConfiguration(
                    upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            channel.close(promise: nil)
                            return UpgradeResult.notUpgraded
                        }
                    })
                return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                    configuration: .init(upgradeConfiguration: config))
            }
        }
    fputs("nio-ws-echo (async) listening on \(o.host):\(o.port)\n", stderr)
    try await withThrowingDiscardingTaskGroup { group in
        try await channel.executeThenClose { inbound in
            for try await upgrade in inbound {
                group.addTask {
                    guard case .websocket(let ws) = try? await upgrade.get() else { return }
                    try? await ws.executeThenClose { inbound, outbound in
                        for try await frame in inbound {
                            switch frame.opcode {
                            case .text, .binary, .continuation:
                                try await outbound.write(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData))
                            case .ping:
                                try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
                            case .connectionClose:
                                var data = frame.unmaskedData
                                let code = data.readSlice(length: 2) ?? ByteBuffer()
                                try await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
                                return
                            default:
                                break
                            }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - main

let options = Options.parse()
raiseNoFile()
if options.broadcast && options.loops != 1 {
    fputs("--broadcast needs --loops 1 (the subscriber list belongs to one loop)\n", stderr)
    exit(2)
}
if options.broadcast && options.api != "handlers" {
    fputs("--broadcast is implemented with --api handlers only\n", stderr)
    exit(2)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: options.loops)
switch options.api {
case "handlers": try await runHandlers(options, group: group)
case "async": try await runAsync(options, group: group)
default:
    fputs("--api must be handlers or async\n", stderr)
    exit(2)
}
