import HubAuth
import struct Foundation.UUID
import HubHTTP
import HubStore

/// Org scoping in one place. Every customer handler that touches a record of an org asks
/// `authorize(org:role:what:)` before reading or acting on it:
/// - not one of the caller's orgs → 404 with the same body as a missing record (the caller
///   cannot tell "exists elsewhere" from "does not exist");
/// - one of its orgs, but its role is too low → 403 `forbidden`.
extension RequestContext {
    /// Checks that the principal may act in `org` with at least `role`. `what` names the
    /// record for the 404 ("device", "session"...). API keys act in their own org only, with
    /// the scopes the route's guard already checked; admins act everywhere.
    public func authorize(org: UUID, role: MemberRole, what: String) throws(Problem) {
        switch principal {
        case .admin:
            return
        case .user(let user):
            guard let have = user.roles[org] else { throw Problem.noSuch(what) }
            guard have >= role else { throw Problem.forbidden("this needs the \(role.rawValue) role in the org; you are \(have.rawValue)") }
        case .apiKey(let key):
            guard key.orgID == org else { throw Problem.noSuch(what) }
        case .device(let device):
            guard device.orgID == org else { throw Problem.noSuch(what) }
        case .anonymous:
            throw Problem.noSuch(what)
        }
    }

    /// The orgs the caller can see (users: their memberships; keys and devices: their org).
    /// Nil for admins, who see every org.
    public var visibleOrgs: Set<UUID>? {
        switch principal {
        case .admin: return nil
        case .user(let u): return Set(u.roles.keys)
        case .apiKey(let k): return k.orgID.map { [$0] } ?? []
        case .device(let d): return [d.orgID]
        case .anonymous: return []
        }
    }
}
