import Foundation
import HubAuth
import HubHTTPClient
import HubIO
import Logging

/// Where the JWKS comes from: `--supabase-jwks-file` (read again on each refresh, so a
/// rotated file is picked up), else `<supabase-url>/auth/v1/.well-known/jwks.json` over HTTPS
/// with the hub's own client (certificates verified against the system store).
enum JWKSSource {
    /// Largest JWKS document accepted (a real one is a few KiB).
    static let maxBytes = 1 << 20

    static func fetch(config: ServerConfig, loop: EventLoop, logger: Logger) throws -> JWKSRefresher.Fetch? {
        if let file = config.supabaseJWKSFile {
            return {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                guard data.count <= maxBytes else { throw JWKSFetchError(description: "\(file) is larger than \(maxBytes) bytes") }
                return Array(data)
            }
        }
        guard let base = config.supabaseURL else { return nil }
        var trimmed = Substring(base)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        let url = trimmed + "/auth/v1/.well-known/jwks.json"
        let client: HTTPClient
        do {
            client = try HTTPClient(eventLoop: loop, configuration: .init(additionalCAFile: config.supabaseCAFile))
        } catch {
            throw ConfigError(message: "--supabase-ca-file: \(error)")
        }
        return {
            let response = try await client.get(String(url), timeout: .seconds(10))
            guard response.status == 200 else { throw JWKSFetchError(description: "GET \(url): HTTP \(response.status)") }
            return response.body
        }
    }

    struct JWKSFetchError: Error, CustomStringConvertible {
        let description: String
    }
}
