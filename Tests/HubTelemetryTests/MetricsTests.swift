import Foundation
@testable import HubTelemetry
import Logging
import XCTest

final class MetricsTests: XCTestCase {
    func testShardedCounterSumsWritersFromManyThreads() {
        let registry = MetricsRegistry(loops: 4)
        let c = registry.counter("hits_total", help: "Hits.")
        DispatchQueue.concurrentPerform(iterations: 5) { shard in
            for _ in 0..<10_000 { c.increment(shard: shard < 4 ? shard : nil) }
        }
        XCTAssertEqual(c.value, 50_000)
    }

    func testPrometheusExposition() {
        let registry = MetricsRegistry(loops: 1)
        registry.counter("req_total", help: "Requests.", labels: [("route", "/a"), ("status", "200")]).increment(by: 3, shard: 0)
        registry.counter("req_total", help: "Requests.", labels: [("route", "/\"b\""), ("status", "404")]).increment(shard: nil)
        let h = registry.histogram("lat_seconds", help: "Latency.", labels: [("route", "/a")], buckets: [0.001, 0.01])
        h.observe(nanoseconds: 500_000, shard: 0)
        h.observe(nanoseconds: 5_000_000, shard: 0)
        h.observe(nanoseconds: 50_000_000, shard: nil)
        let g = registry.gauge("open", help: "Open.")
        g.add(5, shard: 0); g.add(-2, shard: 0)
        let text = registry.render()
        XCTAssertEqual(text, """
        # HELP req_total Requests.
        # TYPE req_total counter
        req_total{route="/a",status="200"} 3
        req_total{route="/\\"b\\"",status="404"} 1
        # HELP lat_seconds Latency.
        # TYPE lat_seconds histogram
        lat_seconds_bucket{route="/a",le="0.001"} 1
        lat_seconds_bucket{route="/a",le="0.01"} 2
        lat_seconds_bucket{route="/a",le="+Inf"} 3
        lat_seconds_sum{route="/a"} 0.0555
        lat_seconds_count{route="/a"} 3
        # HELP open Open.
        # TYPE open gauge
        open 3

        """)
    }

    func testSameSeriesIsReturnedTwice() {
        let registry = MetricsRegistry(loops: 1)
        let a = registry.counter("x_total", help: "X.", labels: [("k", "v")])
        let b = registry.counter("x_total", help: "X.", labels: [("k", "v")])
        XCTAssertTrue(a === b)
    }
}

final class JSONLogHandlerTests: XCTestCase {
    func testLinesAreValidJSONWithMetadataAndEscapes() throws {
        let sink = LogSink.capturing()
        var logger = Logger(label: "t") { JSONLogHandler(label: $0, level: .info, sink: sink) }
        logger[metadataKey: "request_id"] = "abc"
        logger.info("quote \" backslash \\ newline \n control \u{01}", metadata: ["n": .stringConvertible(42), "list": .array(["a", "b"])])
        logger.debug("below level")
        XCTAssertEqual(sink.lines.count, 1)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(sink.lines[0].utf8)) as? [String: Any])
        XCTAssertEqual(obj["msg"] as? String, "quote \" backslash \\ newline \n control \u{01}")
        XCTAssertEqual(obj["request_id"] as? String, "abc")
        XCTAssertEqual(obj["n"] as? Int, 42)
        XCTAssertEqual(obj["list"] as? [String], ["a", "b"])
        XCTAssertEqual(obj["level"] as? String, "info")
        XCTAssertEqual(obj["logger"] as? String, "t")
        let ts = try XCTUnwrap(obj["ts"] as? String)
        XCTAssertNotNil(ISO8601DateFormatter.withFractional.date(from: ts), ts)
    }
}

extension ISO8601DateFormatter {
    static let withFractional: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
}
