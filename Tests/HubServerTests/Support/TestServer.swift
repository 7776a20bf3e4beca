import Foundation
import HubServer
import HubTelemetry
import Logging

/// Starts a hub in the test process on a free port, with logs captured in memory.
func startTestServer(_ configure: (inout ServerConfig) -> Void = { _ in }, routes: (HTTPApplication) -> Void = { _ in }) throws -> (HubServer, LogSink) {
    var config = ServerConfig()
    config.host = "127.0.0.1"
    config.port = 0
    config.loops = 2
    config.dataDirectory = NSTemporaryDirectory() + "devicehub-test-\(UUID().uuidString)"
    // Several hubs in one process are several nodes: each needs its own id.
    config.nodeID = "test-" + UUID().uuidString.prefix(8).lowercased()
    configure(&config)
    let sink = LogSink.capturing()
    let logger = Logger(label: "test") { label in JSONLogHandler(label: label, level: .debug, sink: sink) }
    let server = try HubServer(config: config, logger: logger)
    routes(server.application)
    try server.start()
    return (server, sink)
}

/// The built `devicehub` executable next to the test bundle.
func devicehubBinary() -> URL {
    var dir = Bundle(for: TestClientAnchor.self).bundleURL.deletingLastPathComponent()
    if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("devicehub").path) {
        dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug")
    }
    return dir.appendingPathComponent("devicehub")
}

final class TestClientAnchor {}

/// A `devicehub` child process with its stderr captured.
final class HubProcess {
    let process = Process()
    let stderrPipe = Pipe()
    private(set) var port = 0
    private var collected = Data()
    private let lock = NSLock()

    init(arguments: [String], environment: [String: String] = [:], shellPrefix: String? = nil) throws {
        if let shellPrefix {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            let quoted = ([devicehubBinary().path] + arguments).map { "'\($0)'" }.joined(separator: " ")
            process.arguments = ["-c", "\(shellPrefix); exec \(quoted)"]
        } else {
            process.executableURL = devicehubBinary()
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["DEVICEHUB_DATA_DIR"] = NSTemporaryDirectory() + "devicehub-test-\(UUID().uuidString)"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardError = stderrPipe
        process.standardOutput = FileHandle.nullDevice
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock(); self.collected.append(d); self.lock.unlock()
        }
        try process.run()
    }

    var log: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: collected, as: UTF8.self)
    }

    /// Waits for the "listening" log line and returns the HTTP port.
    func waitUntilListening(timeout: Double = 20) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            for line in log.split(separator: "\n") where line.contains("\"msg\":\"listening\"") {
                if let data = line.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                   let p = obj["port"] as? Int {
                    port = p
                    return p
                }
            }
            if !process.isRunning { throw TestError("devicehub exited: \(process.terminationStatus)\n\(log)") }
            usleep(20_000)
        }
        throw TestError("devicehub did not start listening:\n\(log)")
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for exit; returns the status or nil on timeout.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { return nil }
        // The process is gone: collect what it wrote that the handler has not seen yet, so a
        // caller reading `log` next sees the last lines (the exit message) too.
        stderrPipe.fileHandleForReading.readabilityHandler = nil
        let rest = stderrPipe.fileHandleForReading.readDataToEndOfFile()
        lock.lock(); collected.append(rest); lock.unlock()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        stderrPipe.fileHandleForReading.readabilityHandler = nil
    }
}

/// A fixed 32-byte hash key (hex) for hubs on Redis + PostgreSQL, which require one.
let testHashKey = String(repeating: "5a", count: 32)
