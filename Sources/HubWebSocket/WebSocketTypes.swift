// The vocabulary shared by the reader, the writer and the handshake: opcodes, roles, limits,
// close codes, events and the protocol error. Everything here is a plain value; nothing
// allocates on the hot path.

/// A frame opcode (RFC 6455 §5.2). Values 3–7 and 0xB–0xF are reserved: the reader fails the
/// connection with 1002 when it sees one, so they have no case here.
public enum WebSocketOpcode: UInt8, Sendable, CaseIterable {
    case continuation = 0
    case text = 1
    case binary = 2
    case close = 8
    case ping = 9
    case pong = 10

    /// Control frames (close, ping, pong) have the high bit of the opcode set (RFC 6455 §5.5).
    @inlinable public var isControl: Bool { rawValue & 0x8 != 0 }
    /// A data opcode that starts a message (text or binary).
    @inlinable public var isDataStart: Bool { self == .text || self == .binary }
}

/// Which end of the connection this codec plays. The role decides masking (RFC 6455 §5.1):
/// a client masks every frame it sends and a server never does; each side fails the
/// connection (1002) when the peer gets it wrong.
public enum WebSocketRole: Sendable {
    /// Requires masked input, sends unmasked frames.
    case server
    /// Requires unmasked input, sends masked frames.
    case client
}

/// Size limits enforced by `WebSocketReader`. Exceeding either fails the connection with 1009
/// (message too big). The frame limit is checked on the frame header, before any payload is
/// buffered; the message limit on the header too for uncompressed messages (fragments add up),
/// and on the inflated size for compressed ones (a deflate bomb stops at the limit).
public struct WebSocketLimits: Sendable, Equatable {
    /// Largest payload length a single frame may announce (wire bytes, compressed or not).
    public var maxFrameBytes = 1 << 20
    /// Largest message after reassembly and decompression.
    public var maxMessageBytes = 1 << 20

    public init(maxFrameBytes: Int = 1 << 20, maxMessageBytes: Int = 1 << 20) {
        self.maxFrameBytes = maxFrameBytes
        self.maxMessageBytes = maxMessageBytes
    }
}

/// A close status code (RFC 6455 §7.4). A struct rather than an enum so that application
/// codes (3000–4999) and codes registered later stay representable.
public struct WebSocketCloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let normal = WebSocketCloseCode(1000)
    public static let goingAway = WebSocketCloseCode(1001)
    public static let protocolError = WebSocketCloseCode(1002)
    public static let unsupportedData = WebSocketCloseCode(1003)
    /// Never sent: what the application sees when a close frame carried no code.
    public static let noStatusReceived = WebSocketCloseCode(1005)
    /// Never sent: what the application sees when the connection dropped without a close frame.
    public static let abnormalClosure = WebSocketCloseCode(1006)
    public static let invalidPayload = WebSocketCloseCode(1007)
    public static let policyViolation = WebSocketCloseCode(1008)
    public static let messageTooBig = WebSocketCloseCode(1009)
    public static let mandatoryExtension = WebSocketCloseCode(1010)
    public static let internalError = WebSocketCloseCode(1011)
    public static let serviceRestart = WebSocketCloseCode(1012)
    public static let tryAgainLater = WebSocketCloseCode(1013)
    public static let badGateway = WebSocketCloseCode(1014)

    /// Whether the code may appear in a close frame: 1000–1003 and 1007–1014 (IANA registry;
    /// 1004 is reserved, 1005/1006/1015 are for local reporting only) and 3000–4999
    /// (libraries/frameworks and private use). 0–999, 1016–2999 and 5000+ are invalid.
    public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    public var description: String { String(rawValue) }
}

/// What the reader delivers, in wire order. Payload buffers point either into the caller's
/// input buffer (a whole unfragmented, uncompressed message: zero copy) or into the reader's
/// reassembly buffer; either way they are valid only during the callback.
public enum WebSocketEvent {
    /// A complete text message: reassembled, decompressed and validated as UTF-8.
    case text(UnsafeRawBufferPointer)
    /// A complete binary message: reassembled and decompressed.
    case binary(UnsafeRawBufferPointer)
    /// A ping (payload ≤ 125 bytes); the caller answers with a pong carrying the same bytes.
    case ping(UnsafeRawBufferPointer)
    /// A pong (solicited or not).
    case pong(UnsafeRawBufferPointer)
    /// The peer's close frame, already validated: `code` is nil for an empty payload,
    /// otherwise valid on the wire, and `reason` is valid UTF-8. The reader ignores all input
    /// after it.
    case close(code: WebSocketCloseCode?, reason: String)
}

/// A violation of RFC 6455/7692 or of the limits, found in the peer's bytes. The caller
/// sends a close frame with `closeCode` (1002 framing, 1007 invalid payload data, 1009 too
/// big, 1011 internal error) and closes the connection; the reader ignores further input.
public struct WebSocketProtocolError: Error, Equatable, CustomStringConvertible {
    public var closeCode: WebSocketCloseCode
    /// A short English explanation, safe to put in the close frame (ASCII, < 123 bytes).
    public var reason: String

    public init(closeCode: WebSocketCloseCode, reason: String) {
        self.closeCode = closeCode
        self.reason = reason
    }

    public var description: String { "\(closeCode.rawValue) \(reason)" }

    static func framing(_ reason: String) -> WebSocketProtocolError { .init(closeCode: .protocolError, reason: reason) }
    static func invalidPayload(_ reason: String) -> WebSocketProtocolError { .init(closeCode: .invalidPayload, reason: reason) }
    static func tooBig(_ reason: String) -> WebSocketProtocolError { .init(closeCode: .messageTooBig, reason: reason) }
}
