// Problem details (RFC 7807/9457) and JSON body helpers.

import Foundation
import XCTest
@testable import HubHTTP

final class ProblemTests: XCTestCase {
    private func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    func testFieldsAndKeys() throws {
        var p = Problem(status: 409, code: "lease_conflict", detail: "lease is stale")
        p.requestID = "req-123"
        p.instance = "/api/v1/device/commands/1/result"
        let json = try object(p.jsonBytes())
        XCTAssertEqual(json["type"] as? String, "https://devicehub.dev/problems/lease_conflict")
        XCTAssertEqual(json["title"] as? String, "Conflict")
        XCTAssertEqual(json["status"] as? Int, 409)
        XCTAssertEqual(json["code"] as? String, "lease_conflict")
        XCTAssertEqual(json["detail"] as? String, "lease is stale")
        XCTAssertEqual(json["instance"] as? String, "/api/v1/device/commands/1/result")
        XCTAssertEqual(json["request_id"] as? String, "req-123")
        XCTAssertNil(json["requestID"])
        XCTAssertEqual(Set(json.keys), ["type", "title", "status", "code", "detail", "instance", "request_id"])
    }

    func testExactBytesAreSortedAndOmitAbsentFields() {
        let p = Problem(status: 404, code: "not_found")
        XCTAssertEqual(String(decoding: p.jsonBytes(), as: UTF8.self),
                       #"{"code":"not_found","status":404,"title":"Not Found","type":"https://devicehub.dev/problems/not_found"}"#)
    }

    func testRoundTrip() throws {
        let p = Problem(status: 400, code: "invalid_json", detail: "x").with(requestID: "r1", instance: "/i")
        let decoded = try JSONDecoder().decode(Problem.self, from: Data(p.jsonBytes()))
        XCTAssertEqual(decoded, p)
    }

    func testFromParseErrors() {
        for c in MalformedCases.all {
            guard let error = feedWhole(c.bytes).error else { continue }
            let p = Problem(error)
            XCTAssertEqual(p.status, error.status)
            XCTAssertEqual(p.code, error.code)
            XCTAssertEqual(p.detail, error.detail)
            XCTAssertEqual(p.type, "https://devicehub.dev/problems/" + error.code)
            XCTAssertEqual(p.title, HTTPResponseEncoder.reasonPhrase(error.status))
        }
        let p = Problem(HTTPParseError.uriTooLong(8192))
        XCTAssertEqual(p.status, 414)
        XCTAssertEqual(p.title, "URI Too Long")
        XCTAssertEqual(p.code, "uri_too_long")
        let h2 = Problem(HTTPParseError.versionNotSupported)
        XCTAssertEqual(h2.status, 505)
        XCTAssertEqual(h2.code, "http_version_not_supported")
    }

    func testProblemIsThrowable() {
        func handler() throws(Problem) { throw Problem.notFound("no such device") }
        XCTAssertThrowsError(try handler()) { error in
            XCTAssertEqual((error as? Problem)?.status, 404)
        }
        XCTAssertEqual(Problem.methodNotAllowed(allow: ["GET", "HEAD"]).detail, "allowed methods: GET, HEAD")
        XCTAssertEqual(Problem.unsupportedMediaType().status, 415)
    }

    // MARK: JSONBody

    private struct Claim: Codable, Equatable {
        var max: Int
        var wait: Double?
        var tags: [String]
        struct Inner: Codable, Equatable { var name: String }
        var inner: [Inner]?
    }

    func testDecodeValid() throws {
        let claim = try JSONBody.decode(Claim.self, from: b(#"{"max":3,"wait":1.5,"tags":["a"]}"#))
        XCTAssertEqual(claim, Claim(max: 3, wait: 1.5, tags: ["a"], inner: nil))
    }

    private func decodeProblem(_ json: String) -> Problem? {
        do {
            _ = try JSONBody.decode(Claim.self, from: b(json))
            return nil
        } catch {
            return error
        }
    }

    func testDecodeErrorsAre400InvalidJSONWithPath() {
        let cases: [(String, String)] = [
            ("", "request body is empty"),
            ("{", "malformed JSON"),
            (#"{"tags":[]}"#, "max: required field is missing"),
            (#"{"max":"3","tags":[]}"#, "max: expected number"),
            (#"{"max":null,"tags":[]}"#, "max: expected number, found null"),
            (#"{"max":1,"tags":[1]}"#, "tags[0]: expected string"),
            (#"{"max":1,"tags":[],"inner":[{"name":"a"},{}]}"#, "inner[1].name: required field is missing"),
        ]
        for (json, detail) in cases {
            let p = decodeProblem(json)
            XCTAssertEqual(p?.status, 400, json)
            XCTAssertEqual(p?.code, "invalid_json", json)
            XCTAssertEqual(p?.detail, detail, json)
        }
    }

    func testEncodeIsSortedAndKeepsSlashes() {
        struct Out: Encodable { var z = 1; var a = "x/y"; var m: [String: Int] = ["b": 2, "a": 1] }
        XCTAssertEqual(String(decoding: JSONBody.encode(Out()), as: UTF8.self), #"{"a":"x/y","m":{"a":1,"b":2},"z":1}"#)
    }

    func testEncodeNonFiniteFloats() {
        XCTAssertEqual(String(decoding: JSONBody.encode([Double.nan, .infinity, 1.5]), as: UTF8.self), #"["NaN","Infinity",1.5]"#)
    }
}
