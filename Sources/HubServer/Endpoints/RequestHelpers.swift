import Foundation
import HubAuth
import HubHTTP

extension RequestContext {
    /// A path parameter that must be a UUID; anything else reads like a missing record (404),
    /// so that ids are not probed by their syntax.
    func uuidParam(_ name: String, what: String) throws(Problem) -> UUID {
        guard let raw = params[name], raw.utf8.count <= 64, let id = UUID(uuidString: raw) else { throw Problem.noSuch(what) }
        return id
    }

    /// A query parameter's percent-decoded value (the first occurrence), if present.
    func query(_ name: String) -> String? {
        guard let query = request.query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == name else { continue }
            return String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        return nil
    }

    /// Who is acting, for the audit trail.
    var caller: Caller {
        let ip = clientIP, id = requestID
        switch principal {
        case .user(let u): return .user(u.userID, ip: ip, requestID: id)
        case .apiKey(let k): return .apiKey(k.keyID, ip: ip, requestID: id)
        case .admin(let a): return a.keyID.map { .apiKey($0, ip: ip, requestID: id) } ?? .adminToken(ip: ip, requestID: id)
        case .device(let d): return .device(d.deviceID, ip: ip, requestID: id)
        case .anonymous: return .anonymous(ip: ip, requestID: id)
        }
    }
}
