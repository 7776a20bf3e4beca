import Foundation

/// Tests/peers/http_test_server.py as a child process: a scriptable HTTP(S) server that picks
/// its own port (no port race), records the requests it gets (`recordedRequests()`), and exits
/// with its test.
///
/// The interpreter is `DEVICEHUB_TEST_PYTHON` (scripts/test points it at the test virtualenv)
/// or `python3` on PATH. A missing interpreter makes `start` throw: the tests that use it fail,
/// they are never skipped.
public final class PythonHTTPServer {
    public let port: Int
    private let recordFile = NSTemporaryDirectory() + "hub-requests-\(UUID().uuidString).jsonl"
    private let process: Process
    private let stdinPipe: Pipe

    /// The interpreter the Python-based tests use.
    public static func interpreter() -> (executable: String, arguments: [String]) {
        if let p = ProcessInfo.processInfo.environment["DEVICEHUB_TEST_PYTHON"], !p.isEmpty {
            return (p, [])
        }
        return ("/usr/bin/env", ["python3"])
    }

    /// Tests/peers, found from this file's location in the repository.
    public static var peersDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("peers")
    }

    /// Starts the server; `routes` is a JSON array of canned responses (see the script), TLS
    /// when a certificate and key are given.
    /// The canned routes' file; the server re-reads it on every request (`setRoutes`).
    public let routesFile: String

    /// Replaces the canned routes of the running server.
    public func setRoutes(_ json: String) throws {
        try json.write(toFile: routesFile, atomically: true, encoding: .utf8)
    }

    public init(routesJSON: String? = nil, tlsCertificate: String? = nil, tlsKey: String? = nil) throws {
        var arguments = [Self.peersDirectory.appendingPathComponent("http_test_server.py").path, "--record", recordFile]
        let file = NSTemporaryDirectory() + "hub-routes-\(UUID().uuidString).json"
        try (routesJSON ?? "[]").write(toFile: file, atomically: true, encoding: .utf8)
        arguments += ["--routes", file]
        routesFile = file
        if let tlsCertificate, let tlsKey { arguments += ["--tls-cert", tlsCertificate, "--tls-key", tlsKey] }
        let (executable, prefix) = Self.interpreter()
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = prefix + arguments
        let stdout = Pipe()
        stdinPipe = Pipe()
        process.standardOutput = stdout
        process.standardInput = stdinPipe
        do {
            try process.run()
        } catch {
            throw PythonHTTPServerError(description: "cannot start the Python test server with \(executable) \(prefix): \(error)")
        }
        // The first line is the port. Read byte by byte: `availableData` may return a partial line.
        var line = Data()
        let handle = stdout.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)) else {
            process.terminate()
            throw PythonHTTPServerError(description: "the Python test server did not report its port (is \(executable) \(prefix.joined()) a Python 3?)")
        }
        self.port = port
    }

    /// One request as the server saw it.
    public struct RecordedRequest: Decodable, Sendable {
        public var method: String
        public var path: String
        public var headers: [[String]]
        public var body: String

        /// The first value of header `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.count == 2 && $0[0].lowercased() == name.lowercased() }?[1]
        }

        /// The body parsed as a JSON object.
        public var jsonBody: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
    }

    /// Every request received so far, oldest first (each is recorded before it is answered).
    public func recordedRequests() throws -> [RecordedRequest] {
        guard let text = try? String(contentsOfFile: recordFile, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(RecordedRequest.self, from: Data($0.utf8)) }
    }

    /// Stops the server and waits for it.
    public func stop() {
        try? stdinPipe.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: recordFile)
    }

    deinit {
        stop()
    }

    /// `http://127.0.0.1:<port>` (or https).
    public func baseURL(tls: Bool = false, host: String = "127.0.0.1") -> String {
        "\(tls ? "https" : "http")://\(host):\(port)"
    }
}

/// The Python test server could not be started.
public struct PythonHTTPServerError: Error, CustomStringConvertible {
    public let description: String
}
