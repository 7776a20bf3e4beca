import HubIO
import HubWebSocket

/// What the layer above a WebSocket hears. All calls happen on the connection's loop.
public protocol WebSocketDelegate: AnyObject {
    func webSocketOpened(_ ws: WebSocketConnection)
    /// A complete, validated text message (UTF-8); the buffer is valid during the call only.
    func webSocket(_ ws: WebSocketConnection, text: UnsafeRawBufferPointer)
    func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer)
    /// The connection is gone. `code` is the peer's close code (nil when the TCP connection
    /// ended without a close handshake).
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String)
    /// Output that had passed the soft limit has drained.
    func webSocketWritable(_ ws: WebSocketConnection)
}

extension WebSocketDelegate {
    public func webSocketOpened(_ ws: WebSocketConnection) {}
    public func webSocket(_ ws: WebSocketConnection, binary: UnsafeRawBufferPointer) {}
    public func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {}
    public func webSocketWritable(_ ws: WebSocketConnection) {}
}

/// Close codes of our own (4000–4999), documented in protocol/close-codes.md.
extension WebSocketCloseCode {
    public static let slowConsumer = WebSocketCloseCode(rawValue: 4008)
    public static let idleTimeout = WebSocketCloseCode(rawValue: 4010)
}

/// One WebSocket over a channel, server or client side: reads frames through the codec,
/// answers pings, runs the close handshake, pings idle peers, and bounds queued output.
///
/// Deadlines are checked by the loop's sweep (`channelTick`), like HTTP's.
public final class WebSocketConnection: ChannelHandler {
    public enum SendResult { case sent, backpressure, dropped }
    enum State { case open, closeSent(at: UInt64), closed }

    public let channel: Channel
    public let role: WebSocketRole
    public let settings: WebSocketSettings
    public private(set) var subprotocol: String?
    /// Negotiated permessage-deflate parameters, nil when not in use.
    public let deflate: PerMessageDeflate.Parameters?
    public var delegate: WebSocketDelegate?
    /// Free slot for the layer above (e.g. a subscriber id).
    public var tag: Int = 0

    private var reader: WebSocketReader
    private var writer: WebSocketWriter
    private var state = State.open
    private var lastReceived: UInt64
    private var pingOutstanding = false
    private var overSoftLimit = false

    public init(channel: Channel, role: WebSocketRole, settings: WebSocketSettings, deflate: PerMessageDeflate.Parameters?,
                subprotocol: String?, delegate: WebSocketDelegate?) {
        self.channel = channel
        self.role = role
        self.settings = settings
        self.deflate = deflate
        self.subprotocol = subprotocol
        self.delegate = delegate
        reader = WebSocketReader(role: role, limits: settings.limits, deflate: deflate)
        writer = WebSocketWriter(role: role, deflate: deflate, compressionThreshold: settings.compressionThreshold)
        lastReceived = channel.loop.now
    }

    public var isOpen: Bool { if case .open = state { return true }; return false }

    // MARK: sending

    @discardableResult
    public func send(text: String) -> SendResult {
        var copy = text
        return copy.withUTF8 { send(.text, payload: UnsafeRawBufferPointer($0)) }
    }

    @discardableResult
    public func send(_ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) -> SendResult {
        guard isOpen else { return .dropped }
        if overHardLimit() { return .dropped }
        channel.withOutput { writer.writeMessage(opcode, payload: payload, into: &$0) }
        return softLimitState()
    }

    /// Queues a frame encoded once for many connections (`WebSocketWriter.encodeShared`).
    @discardableResult
    public func send(shared frame: SharedBytes) -> SendResult {
        guard isOpen else { return .dropped }
        if overHardLimit() { return .dropped }
        channel.write(shared: frame)
        return softLimitState()
    }

    /// The hard limit judges the backlog *before* a message: one message larger than the
    /// limit still goes out (the message size limit bounds it), but a peer that has not read
    /// what was already queued is closed. Queued memory is bounded by limit + one message.
    private func overHardLimit() -> Bool {
        if channel.outboundBytes > settings.sendHardLimit {
            // The peer is not reading: a close frame would sit behind the same backlog.
            state = .closed
            let d = delegate
            delegate = nil
            channel.close(.immediately)
            d?.webSocketClosed(self, code: .slowConsumer, reason: "slow consumer")
            return true
        }
        return false
    }

    private func softLimitState() -> SendResult {
        if channel.outboundBytes > settings.sendSoftLimit {
            overSoftLimit = true
            // `webSocketWritable` must come even if the next flush writes everything at once.
            channel.wantsDrainNotice = true
            return .backpressure
        }
        return .sent
    }

    /// Starts the close handshake; the connection ends when the peer answers or after
    /// `closeTimeout`.
    public func close(_ code: WebSocketCloseCode = .normal, reason: String = "") {
        guard isOpen else { return }
        let payload = WebSocketFrameEncoder.closePayload(code, reason: reason)
        payload.withUnsafeBytes { p in channel.withOutput { writer.writeControl(.close, payload: p, into: &$0) } }
        state = .closeSent(at: channel.loop.now)
    }

    // MARK: ChannelHandler

    public func channelActive(_ channel: Channel) {}

    public func channelRead(_ channel: Channel, _ bytes: UnsafeMutableRawBufferPointer) {
        if case .closed = state { return }
        lastReceived = channel.loop.now
        pingOutstanding = false
        do {
            try reader.read(bytes) { event in try self.handle(event) }
        } catch let error as WebSocketProtocolError {
            failProtocol(error.closeCode, error.reason)
        } catch {
            failProtocol(.internalError, "internal error")
        }
    }

    private func handle(_ event: WebSocketEvent) throws {
        switch event {
        case .text(let payload):
            if isOpen { delegate?.webSocket(self, text: payload) }
        case .binary(let payload):
            if isOpen { delegate?.webSocket(self, binary: payload) }
        case .ping(let payload):
            if isOpen { channel.withOutput { writer.writeControl(.pong, payload: payload, into: &$0) } }
        case .pong:
            break
        case .close(let code, let reason):
            switch state {
            case .open:
                // Echo the peer's code (RFC 6455 §5.5.1), then close once it is written.
                let payload = code.map { WebSocketFrameEncoder.closePayload($0, reason: "") } ?? []
                payload.withUnsafeBytes { p in channel.withOutput { writer.writeControl(.close, payload: p, into: &$0) } }
                finish(code: code, reason: reason, mode: .afterFlush)
            case .closeSent:
                finish(code: code, reason: reason, mode: .afterFlush)
            case .closed:
                break
            }
        }
    }

    /// A protocol violation: send the close code and drop the connection after writing it.
    private func failProtocol(_ code: WebSocketCloseCode, _ reason: String) {
        if isOpen {
            let payload = WebSocketFrameEncoder.closePayload(code, reason: reason)
            payload.withUnsafeBytes { p in channel.withOutput { writer.writeControl(.close, payload: p, into: &$0) } }
        }
        finish(code: code, reason: reason, mode: .afterFlush)
    }

    private func finish(code: WebSocketCloseCode?, reason: String, mode: Channel.CloseMode) {
        if case .closed = state { return }
        state = .closed
        channel.close(mode)
        let d = delegate
        delegate = nil
        d?.webSocketClosed(self, code: code, reason: reason)
    }

    public func channelReadEOF(_ channel: Channel) {
        finish(code: nil, reason: "connection closed", mode: .afterFlush)
    }

    public func channelWritable(_ channel: Channel) {
        if overSoftLimit && channel.outboundBytes <= settings.sendSoftLimit {
            overSoftLimit = false
            delegate?.webSocketWritable(self)
        }
    }

    public func channelTick(_ channel: Channel, now: UInt64) {
        switch state {
        case .closed:
            return
        case .closeSent(let at):
            if now &- at > UInt64(settings.closeTimeout * 1e9) { finish(code: nil, reason: "close timeout", mode: .immediately) }
            return
        case .open:
            break
        }
        let quiet = now &- lastReceived
        if quiet > UInt64(settings.idleTimeout * 1e9) {
            close(.idleTimeout, reason: "idle timeout")
            return
        }
        if quiet > UInt64(settings.pingInterval * 1e9) && !pingOutstanding {
            pingOutstanding = true
            channel.withOutput { writer.writeControl(.ping, payload: UnsafeRawBufferPointer(start: nil, count: 0), into: &$0) }
        }
    }

    public func channelDrain(_ channel: Channel) {
        close(.goingAway, reason: "server draining")
    }

    public func channelClosed(_ channel: Channel, error: Error?) {
        finish(code: nil, reason: error.map { "\($0)" } ?? "connection closed", mode: .immediately)
    }
}
