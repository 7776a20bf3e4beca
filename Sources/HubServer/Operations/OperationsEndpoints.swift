import Foundation
import HubHTTP
import HubTelemetry

/// `/healthz`, `/readyz`, `/version`, `/metrics` and `/api/docs`: what an operator, a load
/// balancer and Prometheus need. None of them touches Redis or PostgreSQL on the request path.
enum OperationsEndpoints {
    static func install(on app: HTTPApplication, readiness: Readiness) {
        // Liveness: the loop answered, which is all it claims.
        // Built once: answering copies references, not bytes.
        var healthy = Response(status: 200, body: Array("{\"status\":\"ok\"}".utf8))
        healthy.headers.add(name: "Content-Type", value: "application/json")
        healthy.headers.add(name: "Cache-Control", value: "no-store")
        healthy.prepare()
        app.route(.get, "/healthz") { [healthy] _, responder in responder.send(healthy) }

        app.route(.get, "/readyz") { ctx, responder in
            struct Status: Encodable { var status: String; var draining: Bool; var checks: [String: String] }
            let draining = app.draining.load(ordering: .relaxed)
            let checks = readiness.snapshot()
            let ready = !draining && checks.allSatisfy(\.ready)
            var body = Status(status: ready ? "ready" : "not_ready", draining: draining, checks: [:])
            for c in checks { body.checks[c.name] = c.ready ? "up" : "down" }
            var r = Response.json(body, status: ready ? 200 : 503)
            r.headers.add(name: "Cache-Control", value: "no-store")
            if !ready { r.headers.add(name: "Retry-After", value: "5") }
            responder.send(r)
        }

        app.route(.get, "/version") { _, responder in
            struct Version: Encodable { var name: String; var version: String; var git_commit: String; var build_time: String; var swift: String }
            responder.send(.json(Version(name: "devicehub", version: BuildInfo.version, git_commit: BuildInfo.gitCommit,
                                         build_time: BuildInfo.buildTime, swift: BuildInfo.swiftVersion)))
        }

        app.route(.get, "/metrics") { _, responder in
            responder.send(.text(app.registry.render(), contentType: "text/plain; version=0.0.4; charset=utf-8"))
        }

        let docs = Array(OpenAPIDocument.yaml.utf8)
        app.route(.get, "/api/docs") { _, responder in
            var r = Response(status: 200, body: docs)
            r.headers.add(name: "Content-Type", value: "application/yaml")
            responder.send(r)
        }
    }

    /// Process-level gauges read at scrape time.
    static func installProcessCollector(on registry: MetricsRegistry) {
        let started = Date()
        registry.addCollector {
            var out: [(name: String, help: String, kind: MetricsRegistry.Kind, value: Double)] = []
            out.append(("process_start_time_seconds", "Start time of the process since the epoch.", .gauge, started.timeIntervalSince1970))
            if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
                let fields = statm.split(separator: " ")
                if fields.count > 1, let pages = Double(fields[1]) {
                    out.append(("process_resident_memory_bytes", "Resident memory size in bytes.", .gauge, pages * Double(sysconf(Int32(_SC_PAGESIZE)))))
                }
            }
            if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
                out.append(("process_open_fds", "Open file descriptors.", .gauge, Double(fds.count)))
            }
            return out
        }
    }
}
