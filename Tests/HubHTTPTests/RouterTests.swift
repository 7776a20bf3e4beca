// Router: parameters, literal-over-parameter priority, 404 vs 405, HEAD served by GET.

import XCTest
@testable import HubHTTP

final class RouterTests: XCTestCase {
    private func makeRouter() -> Router<String> {
        var r = Router<String>()
        r.add(.get, "/api/v1/customer/devices", "listDevices")
        r.add(.post, "/api/v1/customer/devices/provision", "provision")
        r.add(.get, "/api/v1/customer/devices/:id/status", "deviceStatus")
        r.add(.get, "/api/v1/customer/sessions/:id", "getSession")
        r.add(.post, "/api/v1/customer/sessions/:id/approve", "approve")
        r.add(.post, "/api/v1/device/commands/:id/result", "result")
        r.add(.post, "/api/v1/device/commands/claim", "claim")
        r.add(.get, "/api/v1/device/commands/claim", "claimInfo")
        r.add(.get, "/", "root")
        r.add(.get, "/orgs/:org/devices/:device", "orgDevice")
        r.add(.delete, "/orgs/:org/devices/:device", "deleteOrgDevice")
        return r
    }

    private func expectFound(_ match: RouteMatch<String>, _ handler: String, _ params: [String: String] = [:],
                             file: StaticString = #filePath, line: UInt = #line) {
        guard case .found(let h, let p, _) = match else {
            return XCTFail("expected \(handler), got \(match)", file: file, line: line)
        }
        XCTAssertEqual(h, handler, file: file, line: line)
        XCTAssertEqual(p, params, file: file, line: line)
    }

    func testLiteralRoutes() {
        let r = makeRouter()
        expectFound(r.match(.get, path: "/api/v1/customer/devices"), "listDevices")
        expectFound(r.match(.get, path: "/"), "root")
    }

    func testParametersAreCaptured() {
        let r = makeRouter()
        expectFound(r.match(.get, path: "/api/v1/customer/devices/d-42/status"), "deviceStatus", ["id": "d-42"])
        expectFound(r.match(.get, path: "/orgs/acme/devices/7"), "orgDevice", ["org": "acme", "device": "7"])
        // Percent-encoding is left as is.
        expectFound(r.match(.get, path: "/api/v1/customer/sessions/a%2Fb"), "getSession", ["id": "a%2Fb"])
    }

    func testPatternIsReported() {
        guard case .found(_, _, let pattern) = makeRouter().match(.post, path: "/api/v1/device/commands/9/result") else {
            return XCTFail("no match")
        }
        XCTAssertEqual(pattern, "/api/v1/device/commands/:id/result")
    }

    func testLiteralWinsOverParameter() {
        let r = makeRouter()
        expectFound(r.match(.post, path: "/api/v1/device/commands/claim"), "claim")
        expectFound(r.match(.post, path: "/api/v1/device/commands/claim/result"), "result", ["id": "claim"])
        var order = Router<Int>()
        order.add(.get, "/x/:id", 1)
        order.add(.get, "/x/me", 2)          // registered after the parameter, still wins
        guard case .found(let h, _, _) = order.match(.get, path: "/x/me") else { return XCTFail("no match") }
        XCTAssertEqual(h, 2)
    }

    func testBacktracksFromDeadEndLiteral() {
        var r = Router<String>()
        r.add(.get, "/a/b/c", "literal")
        r.add(.get, "/a/:x/d", "param")
        expectFound(r.match(.get, path: "/a/b/d"), "param", ["x": "b"])
        expectFound(r.match(.get, path: "/a/b/c"), "literal")
    }

    func testMethodMatchPreferredAcrossBranches() {
        // The literal path exists only for POST; GET must still find the parameter route.
        var r = Router<String>()
        r.add(.post, "/devices/search", "search")
        r.add(.get, "/devices/:id", "get")
        expectFound(r.match(.get, path: "/devices/search"), "get", ["id": "search"])
        expectFound(r.match(.post, path: "/devices/search"), "search")
    }

    func testNotFound() {
        let r = makeRouter()
        for path in ["/nope", "/api/v1/customer/devices/1", "/api/v1/customer/devices/", "/api/v1/customer/devices/1/status/x",
                     "", "*", "api/v1/customer/devices", "/api/v1/customer/devices//status"] {
            guard case .notFound = r.match(.get, path: path) else { return XCTFail("\(path) should be 404") }
        }
    }

    func testMethodNotAllowedListsSortedMethodsWithHead() {
        let r = makeRouter()
        guard case .methodNotAllowed(let allow) = r.match(.put, path: "/orgs/a/devices/b") else { return XCTFail("expected 405") }
        XCTAssertEqual(allow, ["DELETE", "GET", "HEAD"])
        guard case .methodNotAllowed(let allow2) = r.match(.delete, path: "/api/v1/customer/devices/provision") else { return XCTFail("expected 405") }
        XCTAssertEqual(allow2, ["POST"])
        guard case .methodNotAllowed(let allow3) = r.match(.patch, path: "/api/v1/device/commands/claim") else { return XCTFail("expected 405") }
        XCTAssertEqual(allow3, ["GET", "HEAD", "POST"])
    }

    func testHeadUsesGetUnlessHeadRegistered() {
        var r = makeRouter()
        expectFound(r.match(.head, path: "/api/v1/customer/devices"), "listDevices")
        expectFound(r.match(.head, path: "/api/v1/customer/devices/1/status"), "deviceStatus", ["id": "1"])
        r.add(.head, "/api/v1/customer/devices", "headDevices")
        expectFound(r.match(.head, path: "/api/v1/customer/devices"), "headDevices")
        guard case .methodNotAllowed(let allow) = r.match(.head, path: "/api/v1/customer/devices/provision") else {
            return XCTFail("HEAD on a POST-only route is 405")
        }
        XCTAssertEqual(allow, ["POST"])
    }

    func testExtensionMethodsAndReRegistration() {
        var r = Router<Int>()
        r.add(.other("PURGE"), "/cache/:key", 1)
        r.add(.other("PURGE"), "/cache/:name", 2)    // same shape: replaces, new param name
        guard case .found(let h, let params, _) = r.match(HTTPMethod(name: "PURGE"), path: "/cache/k") else { return XCTFail("no match") }
        XCTAssertEqual(h, 2)
        XCTAssertEqual(params, ["name": "k"])
        guard case .methodNotAllowed(let allow) = r.match(.get, path: "/cache/k") else { return XCTFail("expected 405") }
        XCTAssertEqual(allow, ["PURGE"])
    }

    func testSameNodeDifferentParamNamesPerMethod() {
        var r = Router<String>()
        r.add(.get, "/items/:id", "get")
        r.add(.put, "/items/:itemID", "put")
        expectFound(r.match(.get, path: "/items/3"), "get", ["id": "3"])
        expectFound(r.match(.put, path: "/items/3"), "put", ["itemID": "3"])
    }

    func testEmptySegmentDoesNotBindParameter() {
        var r = Router<String>()
        r.add(.get, "/items/:id", "get")
        guard case .notFound = r.match(.get, path: "/items/") else { return XCTFail("empty segment bound to :id") }
    }

    func testRouteListing() {
        XCTAssertEqual(makeRouter().routes.count, 11)
    }
}
