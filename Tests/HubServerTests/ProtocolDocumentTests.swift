import Foundation
import HubHTTP
import HubServer
import HubStore
import HubWebSocket
import XCTest

/// The written contract in protocol/ must keep up with the code.
final class ProtocolDocumentTests: XCTestCase {
    private func read(_ relative: String) throws -> String {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        return try String(contentsOf: dir.appendingPathComponent(relative), encoding: .utf8)
    }

    func testEveryParserErrorCodeIsDocumentedWithItsStatus() throws {
        let doc = try read("protocol/errors.md")
        for (code, status) in HTTPParseError.catalogue {
            XCTAssertTrue(doc.contains("| `\(code)` | \(status) |"), "protocol/errors.md lacks `\(code)` with status \(status)")
        }
        XCTAssertTrue(doc.contains("| `request_timeout` | 408 |"))
    }

    func testEveryStoreErrorCodeIsDocumented() throws {
        let doc = try read("protocol/errors.md")
        for (code, status) in StoreError.catalogue {
            XCTAssertTrue(doc.contains("| `\(code)` | \(status) |"), "protocol/errors.md lacks `\(code)` with status \(status)")
        }
    }

    func testEveryHandshakeRejectionCodeIsDocumented() throws {
        let doc = try read("protocol/errors.md")
        for (code, status) in HandshakeRejection.catalogue {
            XCTAssertTrue(doc.contains("| `\(code)` | \(status) |"), "protocol/errors.md lacks `\(code)` with status \(status)")
        }
    }

    /// Every route the hub serves is in the OpenAPI document, with its method; path parameters
    /// are `{name}` there and `:name` in the router.
    func testEveryRouteIsInTheOpenAPIDocument() throws {
        let doc = try read("protocol/openapi.yaml")
        let (server, _) = try startTestServer()
        defer { server.drain(gracePeriod: 1) }
        let table = server.application.routeTable
        XCTAssertGreaterThan(table.count, 20)
        for (method, pattern) in table {
            let path = pattern.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            guard let start = doc.range(of: "\n  \(path):\n") else {
                XCTFail("protocol/openapi.yaml lacks the path \(path)")
                continue
            }
            // The path's block runs to the next top-level path entry.
            let rest = doc[start.upperBound...]
            let end = rest.range(of: "\n  /")?.lowerBound ?? rest.range(of: "\ncomponents:")?.lowerBound ?? rest.endIndex
            let block = rest[..<end]
            XCTAssertTrue(block.contains("    \(method.name.lowercased()):"), "protocol/openapi.yaml lacks \(method.name) \(path)")
        }
    }
}
