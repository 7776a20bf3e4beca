import COpenSSL

/// The calling thread's OpenSSL error queue. It is per-thread state with no pointer to own, so
/// this is a namespace rather than a wrapper class; only `TLSError` and the TLS wrappers use it.
enum OpenSSLErrorQueue {
    /// Empties the queue without reading it. Called before every `SSL_*` I/O call, as
    /// `SSL_get_error(3)` requires, so a stale entry can never turn a would-block into a failure.
    static func clear() {
        ERR_clear_error()
    }

    /// Pops every queued error, oldest first, as `ERR_error_string_n` text plus any detail string
    /// OpenSSL attached (it often holds the file name or the offending value).
    static func drain() -> [String] {
        var lines: [String] = []
        // 256 bytes: ERR_error_string_n truncates safely, and OpenSSL's own docs use 256.
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            var data: UnsafePointer<CChar>? = nil
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { break }
            let text = buffer.withUnsafeMutableBufferPointer { raw -> String in
                ERR_error_string_n(code, raw.baseAddress, raw.count)
                return String(cString: raw.baseAddress!)
            }
            if let data, flags & ERR_TXT_STRING != 0, data.pointee != 0 {
                lines.append("\(text) (\(String(cString: data)))")
            } else {
                lines.append(text)
            }
        }
        return lines
    }
}
