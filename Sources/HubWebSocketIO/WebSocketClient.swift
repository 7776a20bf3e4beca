import HubIO
import HubWebSocket

/// Opens a client WebSocket on a loop: TCP (and TLS) connect, the HTTP upgrade request, the
/// 101 check, then a `WebSocketConnection` in the client role (masking, optional deflate).
/// For the tools (load generator, reference agent) and tests.
public enum WebSocketClient {
    public struct Options {
        public var host: String
        public var port: Int
        public var path = "/"
        public var headers: [(String, String)] = []
        public var subprotocols: [String] = []
        public var offerDeflate = false
        public var tls: TLSContext?
        public var settings = WebSocketSettings()
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public enum ClientError: Error, CustomStringConvertible {
        case handshake(String)
        case closedDuringHandshake
        public var description: String {
            switch self {
            case .handshake(let why): return "WebSocket handshake failed: \(why)"
            case .closedDuringHandshake: return "connection closed during the WebSocket handshake"
            }
        }
    }

    /// Connects on `loop` (loop thread only). `completion` gets the open connection (with its
    /// delegate installed by `makeDelegate`) or the error.
    public static func connect(_ options: Options, on loop: EventLoop,
                               makeDelegate: @escaping (WebSocketConnection) -> WebSocketDelegate?,
                               completion: @escaping (Result<WebSocketConnection, Error>) -> Void) {
        let address: SocketAddress
        let engine: TLSEngine?
        do {
            address = try SocketAddress.resolve(host: options.host, port: options.port)
            engine = try options.tls.map { try TLSEngine(context: $0, serverName: options.host) }
        } catch {
            completion(.failure(error))
            return
        }
        Connector.connect(to: address, on: loop, tls: engine, makeHandler: { channel in
            ClientHandshake(channel: channel, options: options, makeDelegate: makeDelegate, completion: completion)
        }, onFailure: { completion(.failure($0)) })
    }
}

/// The channel handler until the 101 arrives: sends the request, reads the response head.
final class ClientHandshake: ChannelHandler {
    private let options: WebSocketClient.Options
    private let makeDelegate: (WebSocketConnection) -> WebSocketDelegate?
    private var completion: ((Result<WebSocketConnection, Error>) -> Void)?
    private let request: WebSocketHandshake.ClientRequest
    private var buffer: [UInt8] = []
    /// A 101 head larger than this is not a server we want to talk to.
    private static let maxHeadBytes = 16 * 1024

    init(channel: Channel, options: WebSocketClient.Options, makeDelegate: @escaping (WebSocketConnection) -> WebSocketDelegate?,
         completion: @escaping (Result<WebSocketConnection, Error>) -> Void) {
        self.options = options
        self.makeDelegate = makeDelegate
        self.completion = completion
        request = WebSocketHandshake.clientRequest(host: options.port == 80 || options.port == 443 ? options.host : "\(options.host):\(options.port)",
                                                   path: options.path, subprotocols: options.subprotocols,
                                                   offerDeflate: options.offerDeflate, extraHeaders: options.headers)
    }

    func channelActive(_ channel: Channel) {
        channel.write(request.bytes)
    }

    func channelRead(_ channel: Channel, _ bytes: UnsafeMutableRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        guard let end = headEnd() else {
            if buffer.count > Self.maxHeadBytes { fail(channel, .handshake("response head too large")) }
            return
        }
        let head = Array(buffer[0..<end])
        let leftover = Array(buffer[(end + 4)...])
        switch WebSocketHandshake.verifyResponse(head: head, request: request) {
        case .failure(let why):
            fail(channel, .handshake("\(why)"))
        case .success(let accepted):
            let ws = WebSocketConnection(channel: channel, role: .client, settings: options.settings,
                                         deflate: accepted.deflate, subprotocol: accepted.subprotocol, delegate: nil)
            ws.delegate = makeDelegate(ws)
            channel.handler = ws
            let done = completion
            completion = nil
            done?(.success(ws))
            ws.delegate?.webSocketOpened(ws)
            if !leftover.isEmpty {
                var rest = leftover
                rest.withUnsafeMutableBytes { ws.channelRead(channel, $0) }
            }
        }
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func fail(_ channel: Channel, _ error: WebSocketClient.ClientError) {
        let done = completion
        completion = nil
        channel.close(.immediately)
        done?(.failure(error))
    }

    func channelClosed(_ channel: Channel, error: Error?) {
        let done = completion
        completion = nil
        done?(.failure(error ?? WebSocketClient.ClientError.closedDuringHandshake))
    }
}
