import CHubShims
import COpenSSL

/// Immutable-after-creation `SSL_CTX` wrapper: certificates, protocol floor, ALPN and verification
/// policy shared by many connections.
///
/// New connections take the current context, so SIGHUP reload = build a new `TLSContext` and swap
/// it. Engines keep a strong reference to the context they were created with, so connections that
/// are already open finish on the old certificates and the old `SSL_CTX` is freed after the last
/// of them closes.
///
/// Thread safety: nothing is changed after the factory returns, and OpenSSL allows `SSL_new` on one
/// `SSL_CTX` from many threads, hence `@unchecked Sendable` so a reloader thread can publish it.
public final class TLSContext: @unchecked Sendable {
    /// Which side of the handshake engines built on this context play.
    public enum Role: Sendable {
        case server
        case client
    }

    /// The owned `SSL_CTX *`.
    let pointer: OpaquePointer
    public let role: Role
    /// Whether clients verify the server's chain (and name, when the engine is given one).
    public let verifiesPeer: Bool

    private init(pointer: OpaquePointer, role: Role, verifiesPeer: Bool) {
        self.pointer = pointer
        self.role = role
        self.verifiesPeer = verifiesPeer
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    /// A server context: TLS 1.2 or newer only, ALPN `http/1.1` selected (when `alpn`), idle
    /// connection buffers released, renegotiation refused, and the private key checked against the
    /// leaf certificate so a mismatched pair fails at load time rather than on the first handshake.
    /// Errors name the file concerned.
    public static func server(certificateChainFile: String, privateKeyFile: String, alpn: Bool = true) throws -> TLSContext {
        let context = try make(method: TLS_server_method(), role: .server, verifiesPeer: false)
        let ctx = context.pointer

        // Hub connections are mostly idle; releasing the read/write buffers between records saves
        // ~34 KiB per connection at the cost of a malloc when traffic resumes.
        _ = hub_ssl_ctx_set_release_buffers(ctx)
        // Server cipher preference keeps the weaker-but-allowed TLS 1.2 suites last.
        _ = SSL_CTX_set_options(ctx, hub_SSL_OP_CIPHER_SERVER_PREFERENCE())
        if alpn {
            hub_ssl_ctx_select_alpn_http11(ctx)
        }

        // OpenSSL reports a missing file as a bare "No such file or directory"; naming the path in
        // the message is what makes a bad config line findable.
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateChainFile) == 1 else {
            throw TLSError.fromOpenSSL(operation: "load certificate chain",
                                       context: "cannot load certificate chain from '\(certificateChainFile)'")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw keyError(OpenSSLErrorQueue.drain(), certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile)
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw keyError(OpenSSLErrorQueue.drain(), certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile)
        }
        return context
    }

    /// A client context (TLS 1.2 or newer, renegotiation refused) offering `alpn` protocols. With
    /// `verifyPeer`, the server chain must verify against `caFile`, or against the system trust
    /// store when `caFile` is nil, or against `additionalCAFile` (trusted besides either, e.g. a
    /// private or test CA next to the public ones); the host name is checked per engine (see
    /// `TLSEngine.init(context:serverName:maxBufferedPlaintext:)`).
    public static func client(verifyPeer: Bool, caFile: String? = nil, additionalCAFile: String? = nil,
                              alpn: [String] = ["http/1.1"]) throws -> TLSContext {
        let context = try make(method: TLS_client_method(), role: .client, verifiesPeer: verifyPeer)
        let ctx = context.pointer

        OpenSSLErrorQueue.clear()
        if verifyPeer {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            if let caFile {
                guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                    throw TLSError.fromOpenSSL(operation: "load CA file", context: "cannot load CA certificates from '\(caFile)'")
                }
            } else {
                guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                    throw TLSError.fromOpenSSL(operation: "load CA file", context: "cannot load the system trust store")
                }
            }
            if let additionalCAFile {
                guard SSL_CTX_load_verify_locations(ctx, additionalCAFile, nil) == 1 else {
                    throw TLSError.fromOpenSSL(operation: "load CA file", context: "cannot load CA certificates from '\(additionalCAFile)'")
                }
            }
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }

        if !alpn.isEmpty {
            let wire = try alpnWireFormat(alpn)
            // Unlike most of OpenSSL, SSL_CTX_set_alpn_protos returns 0 on success.
            let rc = wire.withUnsafeBufferPointer { SSL_CTX_set_alpn_protos(ctx, $0.baseAddress, UInt32($0.count)) }
            guard rc == 0 else {
                throw TLSError.fromOpenSSL(operation: "configure ALPN", fallback: "SSL_CTX_set_alpn_protos failed")
            }
        }
        return context
    }

    /// Allocates the `SSL_CTX` and applies what both roles share. Ownership passes to the returned
    /// object at once, so every later `throw` in the factories frees it through `deinit`.
    private static func make(method: OpaquePointer?, role: Role, verifiesPeer: Bool) throws -> TLSContext {
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(method) else {
            throw TLSError.fromOpenSSL(operation: "create context", fallback: "SSL_CTX_new failed")
        }
        let context = TLSContext(pointer: ctx, role: role, verifiesPeer: verifiesPeer)
        guard hub_ssl_ctx_set_min_tls12(ctx) == 1 else {
            throw TLSError.fromOpenSSL(operation: "create context", fallback: "cannot set minimum protocol TLS 1.2")
        }
        // TLS 1.2 renegotiation is refused in both roles: client-initiated it is a cheap way to make
        // a server burn CPU, and on either side it is the only way SSL_write can need to read,
        // which a byte-transforming engine would otherwise have to park and replay.
        _ = SSL_CTX_set_options(ctx, hub_SSL_OP_NO_RENEGOTIATION())
        // The engine's fallback for a would-block SSL_write is to keep the bytes in its own (growable)
        // array and retry later; this mode makes that retry legal after the array moves.
        _ = hub_ssl_ctx_set_accept_moving_write_buffer(ctx)
        return context
    }

    /// The error for an unusable private key. A key/cert mismatch is the common operator mistake and
    /// OpenSSL's wording ("key values mismatch") does not say which files, so name both.
    private static func keyError(_ queued: [String], certificateChainFile: String, privateKeyFile: String) -> TLSError {
        let detail = queued.isEmpty ? "unknown OpenSSL error" : queued.joined(separator: "; ")
        if queued.contains(where: { $0.contains("key values mismatch") }) {
            return TLSError(operation: "load private key",
                            message: "private key '\(privateKeyFile)' does not match the certificate in '\(certificateChainFile)': \(detail)")
        }
        return TLSError(operation: "load private key", message: "cannot load private key from '\(privateKeyFile)': \(detail)")
    }

    /// ALPN protocol list in wire format: each name prefixed by its length byte (RFC 7301).
    private static func alpnWireFormat(_ protocols: [String]) throws -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError(operation: "configure ALPN", message: "protocol name '\(name)' must be 1...255 bytes")
            }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        return wire
    }
}
