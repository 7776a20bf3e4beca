import Foundation
import XCTest

/// Runs the independent Python peers in Tests/peers (websockets, wsproto). The interpreter is
/// `DEVICEHUB_TEST_PYTHON` (set by scripts/test) or the repository's `.build-test-venv`; a
/// missing one fails the test rather than skipping it.
enum PythonPeer {
    static var repositoryRoot: URL {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { dir.deleteLastPathComponent() }
        return dir
    }

    static func interpreter() throws -> String {
        if let p = ProcessInfo.processInfo.environment["DEVICEHUB_TEST_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
        let local = repositoryRoot.appendingPathComponent(".build-test-venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: local) else {
            throw TestError("no Python peer environment: run scripts/test (it builds .build-test-venv with websockets and wsproto)")
        }
        return local
    }

    static func script(_ name: String) -> String { repositoryRoot.appendingPathComponent("Tests/peers/\(name)").path }

    /// Runs a peer script to completion; returns (exit status, stdout, stderr).
    static func run(_ name: String, _ args: [String], timeout: Double = 30) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try interpreter())
        p.arguments = [script(name)] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { p.terminate(); throw TestError("\(name) timed out") }
        return (p.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    /// Starts a long-running peer (a server) that prints its port first; returns it and the port.
    static func start(_ name: String, _ args: [String]) throws -> (Process, Int) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try interpreter())
        p.arguments = [script(name)] + args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            p.terminate()
            throw TestError("\(name) did not report a port: \(line)")
        }
        return (p, port)
    }
}
