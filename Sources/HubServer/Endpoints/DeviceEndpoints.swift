import Foundation
import HubAuth
import HubHTTP
import HubIO
import HubStore
import HubWebSocket
import HubWebSocketIO

/// The device API: registration with an activation code, secret → session token, and the
/// device socket. Registration and auth are open routes (the credential is in the body); their
/// failures are counted per IP and per code or device by the identity services.
enum DeviceEndpoints {
    static func install(on app: HTTPApplication, identity layer: IdentityLayer, commands: CommandsLayer, presence: DevicePresence,
                        settings: WebSocketSettings, policy: HandshakePolicy) {
        struct Register: Decodable { var activation_code: String; var name: String?; var agent_version: String? }
        app.route(.post, "/api/v1/device/register", guard: .anonymous) { _, ctx in
            let body = try ctx.json(Register.self)
            let registered = try await layer.noticingFailures(ctx) {
                try await layer.identity.devices.register(code: body.activation_code, name: body.name, agentVersion: body.agent_version, by: ctx.caller)
            }
            struct Body: Encodable { var device_id: String; var device_secret: String }
            var r = Response.json(Body(device_id: registered.deviceID.wire, device_secret: registered.deviceSecret), status: 201)
            r.headers.add(name: "Cache-Control", value: "no-store")
            return r
        }

        struct Auth: Decodable { var device_id: String; var device_secret: String }
        app.route(.post, "/api/v1/device/auth", guard: .anonymous) { _, ctx in
            let body = try ctx.json(Auth.self)
            let grant = try await layer.noticingFailures(ctx) {
                try await layer.identity.devices.authenticate(deviceID: body.device_id, secret: body.device_secret, by: ctx.caller)
            }
            struct Body: Encodable { var token: String; var expires_in: Int; var device_id: String }
            var r = Response.json(Body(token: grant.token, expires_in: grant.expiresIn, device_id: grant.deviceID.wire))
            r.headers.add(name: "Cache-Control", value: "no-store")
            return r
        }

        // Who the token speaks for: lets an agent check its token without side effects (and is
        // the cheapest authenticated route, which the identity benchmark measures).
        app.route(.get, "/api/v1/device/me", guard: .device) { _, ctx in
            guard case .device(let device) = ctx.principal else { throw Problem.unauthenticated() }
            // Two UUIDs need no escaping: built directly rather than through JSONEncoder.
            var r = Response(status: 200, body: Array("{\"device_id\":\"\(device.deviceID.wire)\",\"org_id\":\"\(device.orgID.wire)\"}".utf8))
            r.headers.add(name: "Content-Type", value: "application/json")
            return r
        }

        // The token is checked by the guard before the upgrade: a bad one is a plain 401.
        let authority = IdentitySocketAuthority(layer: layer)
        app.route(.get, "/ws/device", guard: .device) { request, ctx in
            guard case .device(let device) = ctx.principal, let token = bearerToken(request) else { throw Problem.unauthenticated() }
            return WebSocketUpgrade.respond(to: ctx, policy: policy, settings: settings) { _ in
                DeviceSocket(device: device, token: token, registry: layer.deviceConnections, authority: authority,
                             presence: presence, revalidateInterval: 60, commands: commands)
            }
        }
    }

    static func bearerToken(_ request: HTTPRequest) -> String? { HubAuthenticator.bearer(request) }
}

/// `/ws/customer`: a JWT in `Authorization` is verified before the upgrade (a bad one is a
/// 401); without one the socket opens and must send `auth` within the deadline.
enum CustomerSocketEndpoint {
    /// Rooms one connection may watch at once.
    static let maxRooms = 100

    static func install(on app: HTTPApplication, identity layer: IdentityLayer, rooms: RoomsLayer, settings: WebSocketSettings, policy: HandshakePolicy) {
        let authority = IdentitySocketAuthority(layer: layer)
        let logger = app.logger
        app.route(.get, "/ws/customer", guard: .anonymous) { request, ctx in
            var user: UserPrincipal?
            if let token = DeviceEndpoints.bearerToken(request) {
                user = try await layer.authenticateUser(token: token, on: ctx.loop, caller: ctx.caller)
            }
            let preauthenticated = user
            return WebSocketUpgrade.respond(to: ctx, policy: policy, settings: settings) { _ in
                CustomerSocket(authority: authority, rooms: rooms, preauthenticated: preauthenticated, maxRooms: maxRooms,
                               authDeadline: layer.config.customerAuthDeadline, logger: logger)
            }
        }
    }
}

/// The sockets' view of the identity layer.
struct IdentitySocketAuthority: SocketAuthority {
    let layer: IdentityLayer

    func verifyUser(token: String, on loop: EventLoop, ip: String) async throws -> UserPrincipal {
        try await layer.authenticateUser(token: token, on: loop, caller: .anonymous(ip: ip))
    }

    func userCanSee(room kind: RoomName.Kind, id: UUID, user: UserPrincipal) async throws -> Bool {
        let records = layer.stores.records
        let orgID: UUID?
        switch kind {
        case .org: orgID = id
        case .device: orgID = try await records.device(id: id)?.orgID
        case .session: orgID = try await records.session(id: id)?.orgID
        }
        guard let orgID else { return false }
        return user.roles[orgID] != nil
    }

    func deviceSeen(_ deviceID: UUID) async {
        do {
            _ = try await layer.stores.records.updateDevice(id: deviceID, expected: nil, change: DeviceChange(lastSeenAt: Date(), updatedAt: Date()))
        } catch {
            layer.logger.debug("last_seen_at not written", metadata: ["device_id": .string(deviceID.wire), "error": .string("\(error)")])
        }
    }

    func deviceTokenIsValid(_ token: String, deviceID: UUID) async -> Bool? {
        do {
            return try await layer.identity.devices.validateToken(token).deviceID == deviceID
        } catch let problem as Problem where problem.status == 401 {
            return false
        } catch {
            return nil
        }
    }
}
