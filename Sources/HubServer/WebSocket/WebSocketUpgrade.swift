import HubHTTP
import HubIO
import HubWebSocket
import HubWebSocketIO

/// Turns an HTTP request into a WebSocket (RFC 6455 §4.2): validates the handshake with the
/// codec, answers 101 with the accept value and negotiated extension and subprotocol, and
/// hands the channel to a `WebSocketConnection`. A refused handshake is a problem+json
/// response (400, 403 for a foreign Origin, 426 with `Sec-WebSocket-Version: 13`).
///
/// The handshake deadline is the HTTP request-head deadline: the upgrade request is an
/// ordinary request until the 101 is written.
public enum WebSocketUpgrade {
    public static func respond(to ctx: RequestContext, policy: HandshakePolicy, settings: WebSocketSettings,
                               makeDelegate: @escaping (WebSocketConnection) -> WebSocketDelegate?) -> Response {
        guard ctx.request.method == .get, ctx.request.version == HTTPVersion(major: 1, minor: 1) else {
            return ctx.problem(400, "websocket_requires_get_http11", "a WebSocket handshake is a GET over HTTP/1.1")
        }
        let headers = ctx.request.headers.map { (name: $0.name, value: $0.value) }
        switch WebSocketHandshake.validate(headers: headers, policy: policy) {
        case .failure(let rejection):
            var r = ctx.problem(rejection.status, rejection.code, rejection.detail)
            for (name, value) in rejection.headers { r.headers.add(name: name, value: value) }
            return r
        case .success(let accept):
            var r = Response(status: 101)
            for (name, value) in accept.responseHeaders { r.headers.add(name: name, value: value) }
            r.upgrade = ProtocolUpgrade { channel in
                let ws = WebSocketConnection(channel: channel, role: .server, settings: settings, deflate: accept.deflate,
                                             subprotocol: accept.subprotocol, delegate: nil)
                ws.delegate = makeDelegate(ws)
                ws.delegate?.webSocketOpened(ws)
                return ws
            }
            return r
        }
    }
}
