import CHubShims
import COpenSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-connection engine: ciphertext in/out through memory BIOs.
///
/// The event loop owns the socket; the engine only transforms bytes (the swift-nio-ssl / uSockets
/// model). The loop feeds whatever it read to `receive`, and after every call into the engine
/// (including a throwing one, which may have queued a fatal alert) writes out what
/// `drainCiphertext` returns. Nothing here blocks or touches a file descriptor.
///
/// Not thread-safe: one engine belongs to one loop thread, like its socket.
public final class TLSEngine {
    /// How many ciphertext bytes are pushed into OpenSSL before decrypting what they hold. Feeding a
    /// large read in slices keeps the input BIO small (one slice plus a partial record) instead of
    /// copying, say, 1 MiB into it before the first `SSL_read`.
    static let inputSlice = 64 * 1024

    /// The context this connection was created from; kept alive for as long as the engine.
    public let context: TLSContext
    /// The most plaintext `send` will hold before the handshake completes, so a peer that never
    /// finishes its handshake cannot make the hub buffer without bound.
    public let maxBufferedPlaintext: Int

    /// The owned `SSL *`; it owns both BIOs (`SSL_set_bio`), so `SSL_free` releases all three.
    private let ssl: OpaquePointer
    /// Memory BIO that `receive` writes socket ciphertext into and OpenSSL reads from.
    private let networkIn: OpaquePointer
    /// Memory BIO that OpenSSL writes records and alerts into and `drainCiphertext` empties.
    private let networkOut: OpaquePointer

    /// Plaintext accepted by `send` but not yet by `SSL_write`: sent before the handshake finished
    /// (or, defensively, left over from a would-block write). Flushed in order before new data.
    private var pendingPlaintext: [UInt8] = []
    /// The first fatal error. OpenSSL forbids further I/O on an `SSL` after one, so every later call
    /// reports it again instead of touching OpenSSL.
    private var failure: TLSError?
    /// The peer's close_notify has arrived.
    private var peerClosed = false
    /// `shutdown()` was called; close_notify goes out once pending plaintext has been flushed.
    private var shutdownRequested = false
    /// close_notify has been written to `networkOut`.
    private var closeNotifyQueued = false

    /// Creates the `SSL` for one connection. For a client, `serverName` is sent as SNI (unless it
    /// is an IP literal, which RFC 6066 forbids there) and, when the context verifies peers, is the
    /// name or address the certificate must match. Servers ignore it.
    public init(context: TLSContext, serverName: String? = nil, maxBufferedPlaintext: Int = 256 * 1024) throws {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else {
            throw TLSError.fromOpenSSL(operation: "create connection", fallback: "SSL_new failed")
        }
        guard let networkIn = BIO_new(BIO_s_mem()), let networkOut = BIO_new(BIO_s_mem()) else {
            // Any BIO that was created is not owned by `ssl` yet: SSL_set_bio was never called.
            let error = TLSError.fromOpenSSL(operation: "create connection", fallback: "BIO_new failed")
            SSL_free(ssl)
            throw error
        }
        // A fresh memory BIO answers an empty read with "retry" (eof_return -1), which is what turns
        // "no more ciphertext yet" into SSL_ERROR_WANT_READ rather than an EOF.
        SSL_set_bio(ssl, networkIn, networkOut)
        self.ssl = ssl
        self.networkIn = networkIn
        self.networkOut = networkOut
        self.context = context
        self.maxBufferedPlaintext = maxBufferedPlaintext

        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName {
                try configurePeerName(serverName)
            }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    /// True once the handshake has finished and application data flows.
    public var isHandshakeComplete: Bool {
        SSL_is_init_finished(ssl) == 1
    }

    /// The ALPN protocol both sides agreed on, or nil if none was negotiated (yet).
    public var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>? = nil
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The protocol version in use, e.g. `"TLSv1.3"`, once the handshake has completed.
    public var negotiatedProtocolVersion: String? {
        guard isHandshakeComplete, let name = SSL_get_version(ssl) else { return nil }
        return String(cString: name)
    }

    /// True when `drainCiphertext` has bytes to hand out (handshake records, data, alerts).
    public var hasPendingCiphertext: Bool {
        BIO_ctrl_pending(networkOut) > 0
    }

    /// For clients: produce the ClientHello (drain it afterwards). Harmless for servers, which just
    /// wait for the client's first flight.
    public func startHandshake() throws {
        if let failure { throw failure }
        _ = try driveHandshake()
    }

    /// Feed ciphertext read from the socket; decrypted plaintext is delivered to `onPlaintext`
    /// (possibly several times, in order). Drives the handshake. Returns `.ok`, `.closed` (peer
    /// close_notify), or throws `TLSError` on a fatal error — after which a fatal alert may be
    /// pending: drain and send it, then close the socket.
    ///
    /// The buffer passed to `onPlaintext` is only valid during the call. The closure may call `send`
    /// or `shutdown`; bytes after a close_notify are ignored.
    public func receive(_ ciphertext: UnsafeRawBufferPointer, onPlaintext: (UnsafeRawBufferPointer) -> Void) throws -> TLSReceiveStatus {
        if let failure { throw failure }
        if peerClosed { return .closed }

        var offset = 0
        repeat {
            let count = min(Self.inputSlice, ciphertext.count - offset)
            if count > 0 {
                // A memory BIO only refuses a write if malloc fails; it takes all or nothing.
                guard BIO_write(networkIn, ciphertext.baseAddress! + offset, Int32(count)) == Int32(count) else {
                    throw record(TLSError.fromOpenSSL(operation: "receive", fallback: "cannot buffer \(count) bytes of ciphertext"))
                }
                offset += count
            }
            if try processBufferedCiphertext(onPlaintext) == .closed {
                return .closed
            }
        } while offset < ciphertext.count
        return .ok
    }

    /// Encrypt plaintext; if the handshake is not complete yet, buffer it inside (bounded by
    /// `maxBufferedPlaintext`) and flush after the handshake. Throws after `shutdown()` or a fatal
    /// error, or when the pre-handshake buffer would overflow.
    public func send(_ plaintext: UnsafeRawBufferPointer) throws {
        if let failure { throw failure }
        if shutdownRequested || closeNotifyQueued {
            throw TLSError(operation: "send", message: "connection is shutting down: no data may follow close_notify")
        }
        guard !plaintext.isEmpty else { return }

        // Order matters: anything still parked must reach SSL_write before these bytes do.
        if !isHandshakeComplete || !pendingPlaintext.isEmpty {
            guard pendingPlaintext.count + plaintext.count <= maxBufferedPlaintext else {
                throw TLSError(operation: "send",
                               message: "\(pendingPlaintext.count + plaintext.count) bytes would be buffered before the handshake completes; the limit is \(maxBufferedPlaintext)")
            }
            pendingPlaintext.append(contentsOf: plaintext)
            return
        }
        let written = try write(plaintext)
        if written < plaintext.count {
            pendingPlaintext.append(contentsOf: UnsafeRawBufferPointer(rebasing: plaintext[written...]))
        }
    }

    /// Move pending ciphertext (handshake records, encrypted data, alerts) out to the caller's
    /// buffer for writing to the socket; returns bytes appended.
    @discardableResult
    public func drainCiphertext(into out: inout [UInt8]) -> Int {
        let pending = BIO_ctrl_pending(networkOut)
        guard pending > 0 else { return 0 }
        let start = out.count
        // Grow once and let BIO_read fill the new tail directly: no intermediate copy.
        out.append(contentsOf: repeatElement(0, count: pending))
        var filled = 0
        out.withUnsafeMutableBytes { raw in
            while filled < pending {
                let n = BIO_read(networkOut, raw.baseAddress! + start + filled, Int32(clamping: pending - filled))
                if n <= 0 { break }
                filled += Int(n)
            }
        }
        out.removeLast(pending - filled)
        return filled
    }

    /// Queue close_notify. If the handshake or a flush of buffered plaintext is still outstanding,
    /// close_notify follows them as soon as they complete, so no accepted data is cut off.
    public func shutdown() {
        guard failure == nil, !closeNotifyQueued else { return }
        shutdownRequested = true
        if isHandshakeComplete && pendingPlaintext.isEmpty {
            queueCloseNotify()
        }
    }

    // MARK: - Internals

    /// Runs the handshake (if unfinished) and then reads every complete record in `networkIn`.
    private func processBufferedCiphertext(_ onPlaintext: (UnsafeRawBufferPointer) -> Void) throws -> TLSReceiveStatus {
        if !isHandshakeComplete {
            switch try driveHandshake() {
            case .ok: break
            case .closed: return .closed
            }
            // Still mid-handshake: the rest of the peer's flight has not arrived yet.
            if !isHandshakeComplete { return .ok }
        }
        let status = try readRecords(onPlaintext)
        // Reading may have completed the post-handshake exchange a parked write was waiting for.
        try flushPendingPlaintext()
        return status
    }

    /// One `SSL_do_handshake` step. Would-block is normal (the peer's next flight is not here
    /// yet); on completion, parked plaintext and a deferred close_notify go out.
    private func driveHandshake() throws -> TLSReceiveStatus {
        if isHandshakeComplete { return .ok }
        OpenSSLErrorQueue.clear()
        let rc = SSL_do_handshake(ssl)
        if rc != 1 {
            let code = SSL_get_error(ssl, rc)
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return .ok
            case SSL_ERROR_ZERO_RETURN:
                peerClosed = true
                return .closed
            default:
                throw record(error(operation: "handshake", sslError: code))
            }
        }
        try flushPendingPlaintext()
        return .ok
    }

    /// `SSL_read` until OpenSSL wants more input. Each call yields at most one record's plaintext
    /// (≤ 16 KiB, the scratch size), so a large input containing many records loops here.
    private func readRecords(_ onPlaintext: (UnsafeRawBufferPointer) -> Void) throws -> TLSReceiveStatus {
        try TLSReadScratch.with { scratch in
            while true {
                OpenSSLErrorQueue.clear()
                let n = SSL_read(ssl, scratch.baseAddress, Int32(scratch.count))
                if n > 0 {
                    onPlaintext(UnsafeRawBufferPointer(start: scratch.baseAddress, count: Int(n)))
                    continue
                }
                let code = SSL_get_error(ssl, n)
                switch code {
                case SSL_ERROR_WANT_READ:
                    // The normal exit: every complete record has been consumed.
                    return .ok
                case SSL_ERROR_WANT_WRITE:
                    // A memory BIO grows instead of filling up, so this cannot happen; if it ever
                    // did, the caller's drain-then-receive cycle is exactly the retry it asks for.
                    return .ok
                case SSL_ERROR_ZERO_RETURN:
                    peerClosed = true
                    return .closed
                default:
                    throw record(error(operation: "read", sslError: code))
                }
            }
        }
    }

    /// Writes parked plaintext once the handshake is done, then sends a deferred close_notify.
    private func flushPendingPlaintext() throws {
        guard isHandshakeComplete else { return }
        if !pendingPlaintext.isEmpty {
            let written = try pendingPlaintext.withUnsafeBytes { try write($0) }
            pendingPlaintext.removeFirst(written)
        }
        if shutdownRequested && pendingPlaintext.isEmpty && !closeNotifyQueued {
            queueCloseNotify()
        }
    }

    /// `SSL_write` as much of `plaintext` as OpenSSL takes; returns the count. OpenSSL splits it into
    /// records. Would-block (impossible with memory BIOs and renegotiation off, but handled rather
    /// than assumed) returns a short count and the caller parks the rest.
    private func write(_ plaintext: UnsafeRawBufferPointer) throws -> Int {
        var offset = 0
        while offset < plaintext.count {
            OpenSSLErrorQueue.clear()
            let n = SSL_write(ssl, plaintext.baseAddress! + offset, Int32(clamping: plaintext.count - offset))
            if n > 0 {
                offset += Int(n)
                continue
            }
            let code = SSL_get_error(ssl, n)
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return offset
            default:
                throw record(error(operation: "write", sslError: code))
            }
        }
        return offset
    }

    private func queueCloseNotify() {
        OpenSSLErrorQueue.clear()
        // 0 = our close_notify is queued, peer's not yet seen; 1 = both. Either way our part is
        // done: we never wait for the peer's reply (the loop closes the socket after draining).
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
        closeNotifyQueued = true
    }

    /// Sets SNI and the verification target for a client connection.
    private func configurePeerName(_ serverName: String) throws {
        OpenSSLErrorQueue.clear()
        if Self.isIPAddress(serverName) {
            // No SNI for IP literals (RFC 6066 §3); verification matches an IP SAN instead.
            if context.verifiesPeer {
                guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1 else {
                    throw TLSError.fromOpenSSL(operation: "set server name", context: "invalid IP address '\(serverName)'")
                }
            }
            return
        }
        guard hub_ssl_set_sni(ssl, serverName) == 1 else {
            throw TLSError.fromOpenSSL(operation: "set server name", context: "cannot use '\(serverName)' as SNI")
        }
        // Chain verification alone accepts any valid certificate for any name; pinning the host
        // name is what makes verification mean "this is the server we wanted".
        if context.verifiesPeer {
            guard SSL_set1_host(ssl, serverName) == 1 else {
                throw TLSError.fromOpenSSL(operation: "set server name", context: "cannot verify against '\(serverName)'")
            }
        }
    }

    private static func isIPAddress(_ name: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }

    /// Builds the error for a failed `SSL_*` call (draining the queue) and adds the certificate
    /// verification verdict, which OpenSSL keeps out of the queue and which is the useful part of a
    /// bare "certificate verify failed".
    private func error(operation: String, sslError code: Int32) -> TLSError {
        var error = TLSError.fromOpenSSL(operation: operation, fallback: Self.describe(sslError: code))
        if context.role == .client && context.verifiesPeer {
            let verdict = SSL_get_verify_result(ssl)
            if verdict != Int(X509_V_OK), let text = X509_verify_cert_error_string(verdict) {
                error.message += " (certificate verification: \(String(cString: text)))"
            }
        }
        return error
    }

    /// Remembers the first fatal error so later calls fail the same way without touching OpenSSL.
    private func record(_ error: TLSError) -> TLSError {
        if failure == nil { failure = error }
        return error
    }

    private static func describe(sslError code: Int32) -> String {
        switch code {
        case SSL_ERROR_SYSCALL: return "SSL_ERROR_SYSCALL (unexpected end of input)"
        case SSL_ERROR_SSL: return "SSL_ERROR_SSL (protocol error)"
        default: return "SSL_get_error returned \(code)"
        }
    }
}
