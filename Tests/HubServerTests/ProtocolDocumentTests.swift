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
}
