import Foundation
import XCTest

/// A throw-away certificate authority and server certificates signed by it, made with the
/// `openssl` CLI so no key material is checked in. Removed with the object.
final class TestCertificateAuthority {
    let directory: String
    let certificate: String
    private let key: String

    init(name: String = "Test CA") throws {
        directory = NSTemporaryDirectory() + "hub-http-ca-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        certificate = "\(directory)/ca.pem"
        key = "\(directory)/ca.key"
        try Self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                          "-subj", "/CN=\(name)", "-keyout", key, "-out", certificate])
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A server certificate for `subjectAltName` (e.g. `DNS:localhost,IP:127.0.0.1`), signed by
    /// this CA; returns the certificate and key paths.
    func issueServerCertificate(named name: String = "server", subjectAltName: String = "DNS:localhost,IP:127.0.0.1") throws -> (certificate: String, key: String) {
        let cert = "\(directory)/\(name).pem", serverKey = "\(directory)/\(name).key", csr = "\(directory)/\(name).csr"
        let ext = "\(directory)/\(name).ext"
        try "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=\(subjectAltName)\n"
            .write(toFile: ext, atomically: true, encoding: .utf8)
        try Self.openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-subj", "/CN=\(name)", "-keyout", serverKey, "-out", csr])
        try Self.openssl(["x509", "-req", "-in", csr, "-CA", certificate, "-CAkey", key, "-CAcreateserial",
                          "-days", "1", "-extfile", ext, "-out", cert])
        return (cert, serverKey)
    }

    private static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CertificateError(description: "openssl \(arguments.first ?? "") failed: \(String(decoding: message, as: UTF8.self))")
        }
    }

    struct CertificateError: Error, CustomStringConvertible {
        let description: String
    }
}
