@_spi(Benchmark)
extension SupabaseJWTVerifier {
    /// For tools/jwt-bench only: splits, decodes and parses the header and claims exactly as
    /// `verify` does, without the signature check or the claim rules, to time the parsing on
    /// its own. Returns whether parsing succeeded, never a user: it cannot stand in for
    /// verification.
    public func _parseWithoutVerifying(_ token: [UInt8]) -> Bool {
        let result: Result<Bool, JWTRejection> = token.withUnsafeBytes { bytes in
            CompactJWS.withDecoded(bytes) { jws in
                guard case .success = JOSEHeader.parse(jws.header) else { return .success(false) }
                let audience: StaticString = "authenticated"
                var scanner = JSONScanner(jws.payload)
                let claims = SupabaseClaims.parse(&scanner, audience: UnsafeRawBufferPointer(start: audience.utf8Start, count: audience.utf8CodeUnitCount))
                return .success(claims != nil)
            }
        }
        return (try? result.get()) ?? false
    }
}
