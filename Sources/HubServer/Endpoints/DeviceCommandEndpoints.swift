import Foundation
import HubAuth
import HubCommands
import HubHTTP
import HubStore

/// The device's queue over REST: claim (with a long poll), extend, release, progress, result,
/// and log batches (the REST fallback of the socket's `logs`). A command of another device is
/// 404; a stale lease is 409 with the command's state.
enum DeviceCommandEndpoints {
    static func install(on app: HTTPApplication, layer: CommandsLayer) {
        struct Claim: Decodable { var max: Int?; var wait_seconds: Double? }
        app.route(.post, "/api/v1/device/commands/claim", guard: .device) { _, ctx in
            guard case .device(let device) = ctx.principal else { throw Problem.unauthenticated() }
            let body = try ctx.optionalJSON(Claim.self)
            let max = body?.max ?? 1
            let wait = body?.wait_seconds ?? 0
            guard wait >= 0 && wait <= Double(layer.context.configuration.maxWaitSeconds) else {
                throw Problem.invalidArgument("wait_seconds must be 0...\(layer.context.configuration.maxWaitSeconds)")
            }
            let deliveries = try await claim(device: device.deviceID, max: max, wait: wait, layer: layer, ctx: ctx)
            return jsonText("{\"commands\":[" + deliveries.map(\.json).joined(separator: ",") + "]}")
        }

        struct Extend: Decodable { var lease_token: String; var seconds: Int }
        app.route(.post, "/api/v1/device/commands/:id/extend", guard: .device) { _, ctx in
            let (device, id) = try target(ctx)
            let body = try ctx.json(Extend.self)
            return jsonText(try await layer.leases.extend(deviceID: device, commandID: id, token: try leaseToken(body.lease_token), seconds: body.seconds).json)
        }

        struct Release: Decodable { var lease_token: String; var delay_seconds: Int? }
        app.route(.post, "/api/v1/device/commands/:id/release", guard: .device) { _, ctx in
            let (device, id) = try target(ctx)
            let body = try ctx.json(Release.self)
            return jsonText(try await layer.leases.release(deviceID: device, commandID: id, token: try leaseToken(body.lease_token),
                                                           delaySeconds: body.delay_seconds ?? 0).json)
        }

        struct Progress: Decodable { var lease_token: String; var percent: Int?; var status: JSONValue?; var extend_seconds: Int? }
        app.route(.post, "/api/v1/device/commands/:id/progress", guard: .device) { _, ctx in
            let (device, id) = try target(ctx)
            let body = try ctx.json(Progress.self)
            return jsonText(try await layer.leases.progress(deviceID: device, commandID: id, token: try leaseToken(body.lease_token),
                                                            percent: body.percent, status: try objectText(body.status, field: "status"),
                                                            extendSeconds: body.extend_seconds).json)
        }

        struct Result: Decodable { var lease_token: String; var status: String; var exit_code: Int32?; var output: String? }
        app.route(.post, "/api/v1/device/commands/:id/result", guard: .device) { _, ctx in
            let (device, id) = try target(ctx)
            let body = try ctx.json(Result.self)
            guard body.status == "succeeded" || body.status == "failed" else { throw Problem.invalidArgument("status must be succeeded or failed") }
            return jsonText(try await layer.leases.result(deviceID: device, commandID: id, token: try leaseToken(body.lease_token),
                                                          succeeded: body.status == "succeeded", exitCode: body.exit_code, output: body.output).json)
        }
        installLogs(on: app, layer: layer)
    }

    /// `POST /api/v1/device/commands/{id}/logs`: a batch of the command's lines, deduplicated
    /// by seq against what is stored (a resend answers `duplicates`), as the socket's `logs`.
    static func installLogs(on app: HTTPApplication, layer: CommandsLayer) {
        struct Logs: Decodable { var lease_token: String?; var lines: [DeviceStreamMessage.LineBody] }
        app.route(.post, "/api/v1/device/commands/:id/logs", guard: .device) { _, ctx in
            let (device, id) = try target(ctx)
            let body = try ctx.json(Logs.self)
            guard (1...DeviceStreamService.maxLinesPerBatch).contains(body.lines.count) else {
                throw Problem.invalidArgument("lines must have 1...\(DeviceStreamService.maxLinesPerBatch) lines")
            }
            let lines = try body.lines.map { line throws(Problem) in
                DeviceStreamService.Line(stream: try DeviceStreamMessage.stream(line.stream), seq: line.seq, data: line.data)
            }
            try DeviceStreamService.validate(lines)
            let token = try body.lease_token.map { raw throws(Problem) in try leaseToken(raw) }
            let held = try await layer.streams.held(deviceID: device, commandID: id, leaseToken: token)
            let appended = try await layer.streams.append(lines, to: held)
            return jsonText("{\"accepted\":\(appended.accepted),\"duplicates\":\(appended.duplicates)}")
        }
    }

    /// Claims; with `wait` > 0 and nothing to claim, waits for a wake-up (this node's own, or
    /// one forwarded by the node that enqueued) until the deadline. The waiter is registered
    /// before each look, so a command enqueued between the look and the wait is not missed;
    /// `poll:<device>` tells other nodes where to forward wake-ups.
    static func claim(device: UUID, max: Int, wait: Double, layer: CommandsLayer, ctx: RequestContext) async throws -> [Delivery] {
        let loop = ctx.loop
        let deadline = loop.now &+ UInt64(wait * 1e9)
        var announced = false
        while true {
            let waiter = wait > 0 ? layer.waiters.register(device, on: loop) : nil
            defer { if let waiter { layer.waiters.unregister(device, waiter, on: loop) } }
            let deliveries = try await layer.leases.claim(deviceID: device, max: max)
            let now = loop.now
            guard deliveries.isEmpty, let waiter, now < deadline, !layer.draining else { return deliveries }
            if !announced, layer.config.redisURL != nil {
                announced = true
                try? await layer.context.keyValue.set(DeviceRouter.pollKey(device), Array(layer.nodeID.utf8),
                                                      ttl: .milliseconds(Int64(wait * 1000) + 2000))
            }
            // Closed gate (queue rebuilding): look again soon rather than at the deadline.
            let slice = layer.gate.isOpen ? deadline &- now : Swift.min(deadline &- now, 250_000_000)
            await layer.waiters.wait(waiter, on: loop, nanoseconds: slice)
        }
    }

    private static func target(_ ctx: RequestContext) throws -> (UUID, UUID) {
        guard case .device(let device) = ctx.principal else { throw Problem.unauthenticated() }
        return (device.deviceID, try ctx.uuidParam("id", what: "command"))
    }

    static func leaseToken(_ raw: String) throws(Problem) -> UUID {
        guard raw.utf8.count <= 64, let token = UUID(uuidString: raw) else { throw Problem.invalidArgument("lease_token must be the UUID a claim returned") }
        return token
    }

    /// A JSON object field as text (nil when absent); anything but an object is 400.
    static func objectText(_ value: JSONValue?, field: String) throws -> String? {
        guard let value else { return nil }
        guard let text = try value.objectText() else { throw Problem.invalidArgument("\(field) must be a JSON object") }
        return text
    }

    static func jsonText(_ text: String) -> Response {
        var r = Response(status: 200, body: Array(text.utf8))
        r.headers.add(name: "Content-Type", value: "application/json")
        return r
    }
}
