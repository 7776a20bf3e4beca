import Foundation
import XCTest
import HubIO

/// Certificates, child processes and an in-memory engine pair shared by the TLS tests.

/// A throw-away directory holding generated keys and certificates; removed on `deinit`.
final class TLSTemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "hubtls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A fresh self-signed P-256 certificate for `localhost` (also valid for 127.0.0.1) made by the
    /// `openssl` CLI, so the test never depends on key material checked into the repository.
    func makeSelfSignedCertificate(named name: String = "server") throws -> (certificate: String, key: String) {
        let certificate = "\(path)/\(name).cert.pem"
        let key = "\(path)/\(name).key.pem"
        let result = try TLSChildProcess.run("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", key, "-out", certificate,
        ])
        guard result.status == 0 else {
            throw TLSError(operation: "test setup", message: "openssl req failed (\(result.status)): \(result.stderr)")
        }
        return (certificate, key)
    }
}

/// A child process found on PATH, with captured output and a hard timeout so a stuck peer can
/// never hang the test run.
final class TLSChildProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    private let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let stdinPipe = Pipe()

    init(_ tool: String, _ arguments: [String]) {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = stdinPipe
    }

    func start(stdin: String = "") throws {
        try process.run()
        stdinPipe.fileHandleForWriting.write(Data(stdin.utf8))
        try stdinPipe.fileHandleForWriting.close()
    }

    /// Reads the next line of standard output (for a child that announces e.g. its port).
    func readLine() -> String? {
        var line = Data()
        while true {
            let byte = stdoutPipe.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if byte.first == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    func wait(timeout: TimeInterval = 20) -> Result {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline {
            usleep(10_000)
        }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        let out = stdoutPipe.fileHandleForReading.readDataToEndOfFile()
        let err = stderrPipe.fileHandleForReading.readDataToEndOfFile()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self))
    }

    static func run(_ tool: String, _ arguments: [String], stdin: String = "", timeout: TimeInterval = 20) throws -> Result {
        let child = TLSChildProcess(tool, arguments)
        try child.start(stdin: stdin)
        return child.wait(timeout: timeout)
    }
}

/// Deterministic PRNG (SplitMix64) so a failing random split can be replayed from its seed.
struct TLSSeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A server and a client engine wired back to back in memory: `pump` plays the network, moving
/// each side's pending ciphertext to the other in chunks of `nextChunkSize()` bytes until both are
/// quiet.
final class TLSEnginePair {
    let server: TLSEngine
    let client: TLSEngine
    var serverReceived: [UInt8] = []
    var clientReceived: [UInt8] = []
    var serverStatus: TLSReceiveStatus = .ok
    var clientStatus: TLSReceiveStatus = .ok
    /// Largest single `onPlaintext` delivery seen, to check the per-record scratch bound.
    var largestDelivery = 0
    var nextChunkSize: () -> Int = { Int.max }

    init(server: TLSEngine, client: TLSEngine) {
        self.server = server
        self.client = client
    }

    convenience init(serverContext: TLSContext, clientContext: TLSContext, serverName: String? = "localhost") throws {
        try self.init(server: TLSEngine(context: serverContext), client: TLSEngine(context: clientContext, serverName: serverName))
    }

    /// Starts the client's handshake and pumps until both sides settle.
    func handshake() throws {
        try client.startHandshake()
        try pump()
    }

    func pump(maxRounds: Int = 100_000) throws {
        var buffer: [UInt8] = []
        for _ in 0..<maxRounds {
            var moved = false
            buffer.removeAll(keepingCapacity: true)
            if client.drainCiphertext(into: &buffer) > 0 {
                moved = true
                try deliver(buffer, toServer: true)
            }
            buffer.removeAll(keepingCapacity: true)
            if server.drainCiphertext(into: &buffer) > 0 {
                moved = true
                try deliver(buffer, toServer: false)
            }
            if !moved { return }
        }
        XCTFail("engines never went quiet")
    }

    private func deliver(_ bytes: [UInt8], toServer: Bool) throws {
        var offset = 0
        while offset < bytes.count {
            let count = min(max(1, nextChunkSize()), bytes.count - offset)
            let status = try bytes[offset..<(offset + count)].withUnsafeBytes { chunk in
                try (toServer ? server : client).receive(chunk) { plaintext in
                    largestDelivery = max(largestDelivery, plaintext.count)
                    if toServer {
                        serverReceived.append(contentsOf: plaintext)
                    } else {
                        clientReceived.append(contentsOf: plaintext)
                    }
                }
            }
            if toServer { serverStatus = status } else { clientStatus = status }
            offset += count
        }
    }
}

extension TLSEngine {
    /// Test convenience: `send` for byte arrays and strings.
    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try send($0) }
    }

    func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    /// Test convenience: feed bytes, collecting plaintext.
    func receive(_ bytes: [UInt8], into plaintext: inout [UInt8]) throws -> TLSReceiveStatus {
        try bytes.withUnsafeBytes { raw in
            try receive(raw) { plaintext.append(contentsOf: $0) }
        }
    }

    func drainAll() -> [UInt8] {
        var out: [UInt8] = []
        drainCiphertext(into: &out)
        return out
    }
}

/// Strings appended from several threads under a lock (test threads report their outcome here).
final class TLSLockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []

    func append(_ item: String) {
        lock.lock()
        storage.append(item)
        lock.unlock()
    }

    var items: [String] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

/// Base for TLS tests that need a fresh self-signed certificate and key per test.
class TLSCertificateTestCase: XCTestCase {
    var directory: TLSTemporaryDirectory!
    var certificate = ""
    var key = ""

    override func setUpWithError() throws {
        directory = try TLSTemporaryDirectory()
        (certificate, key) = try directory.makeSelfSignedCertificate()
    }

    override func tearDown() {
        directory = nil
    }
}
