import Foundation
import HubTestSupport
import XCTest

/// Runs the built `hubctl` (and Python snippets) as child processes, with captured output and a
/// hard timeout so a stuck child cannot hang the suite.
enum ChildProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `hubctl` executable built next to the test bundle (`swift build --build-tests`
    /// builds it with the tests).
    static var hubctl: String {
        var dir = Bundle(for: Anchor.self).bundleURL.deletingLastPathComponent()
        if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("hubctl").path) {
            dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug")
        }
        return dir.appendingPathComponent("hubctl").path
    }

    private final class Anchor {}

    /// Runs `hubctl arguments` with only `environment` (plus PATH) set, so variables of the
    /// surrounding shell (DEVICEHUB_URL, …) cannot change what a test sees.
    static func runHubctl(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        try run(hubctl, arguments, environment: environment)
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 60) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        process.environment = env
        // Output goes to files rather than pipes: a child can never block on a full pipe, and
        // nothing has to read concurrently while it runs.
        let base = NSTemporaryDirectory() + "hubctl-test-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            throw TimedOut(description: "\(executable) \(arguments) did not finish within \(timeout) s")
        }
        try? out.close()
        try? err.close()
        return Result(status: process.terminationStatus,
                      stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
    }

    struct TimedOut: Error, CustomStringConvertible {
        let description: String
    }
}
