import ArgumentParser
import Foundation
import HubTelemetry
import HubHTTP
import HubHTTPClient
import HubIO
import BenchSupport

// Plumbing shared by every subcommand: logging, errors, blocking calls through HubHTTPClient
// (setup only, never the measured path), /proc readings, percentiles and the JSON printer.

/// `http://HOST:PORT` → (host, port, base without a trailing slash).
func parseBase(_ url: String, option: String) throws -> (host: String, port: Int, base: String) {
    guard url.hasPrefix("http://") else { throw ValidationError("\(option) must start with http:// (got \(url))") }
    var rest = url.dropFirst(7)
    while rest.hasSuffix("/") { rest = rest.dropLast() }
    guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
        throw ValidationError("\(option) needs an explicit port (got \(url))")
    }
    return (String(rest[..<colon]), port, "http://" + rest)
}

/// Runs async work from a synchronous command and waits for it.
func blocking<T>(_ body: @escaping () async throws -> T) throws -> T {
    let sem = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var outcome: Result<T, any Error>?
    Task {
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        sem.signal()
    }
    sem.wait()
    return try outcome!.get()
}

/// One request through HubHTTPClient; the JSON object answer, or a failure naming the status.
func call(_ client: HTTPClient, _ method: HTTPMethod, _ url: String, bearer: String? = nil, json: [String: Any]? = nil,
          expect: Int) async throws -> [String: Any] {
    var headers = HTTPHeaders()
    if let bearer { headers.add(name: "Authorization", value: "Bearer \(bearer)") }
    var body: [UInt8] = []
    if let json {
        headers.add(name: "Content-Type", value: "application/json")
        body = [UInt8](try JSONSerialization.data(withJSONObject: json))
    }
    let response = try await client.request(method: method, url: url, headers: headers, body: body)
    guard response.status == expect else {
        throw Failure("\(method) \(url): expected \(expect), got \(response.status): \(response.bodyText.prefix(400))")
    }
    guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
        throw Failure("\(method) \(url): body is not a JSON object: \(response.bodyText.prefix(300))")
    }
    return object
}

/// Runs `work(i)` for i in 0..<count with at most `concurrency` at once; results in index order.
func concurrently<T: Sendable>(_ count: Int, concurrency: Int, _ work: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
    var results = [T?](repeating: nil, count: count)
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        var next = 0
        while next < min(count, concurrency) {
            let i = next
            group.addTask { (i, try await work(i)) }
            next += 1
        }
        while let (i, value) = try await group.next() {
            results[i] = value
            if next < count {
                let j = next
                group.addTask { (j, try await work(j)) }
                next += 1
            }
        }
    }
    return results.map { $0! }
}

// MARK: - devices file

/// One line of the devices file written by `setup`: "device_id device_secret session_id".
struct BenchDevice: Sendable {
    var id: String
    var secret: String
    var session: String
}

func readDevices(_ path: String, limit: Int?) throws -> [BenchDevice] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var list = text.split(separator: "\n").compactMap { line -> BenchDevice? in
        let p = line.split(separator: " ")
        return p.count == 3 ? BenchDevice(id: String(p[0]), secret: String(p[1]), session: String(p[2])) : nil
    }
    guard !list.isEmpty else { throw ValidationError("no devices in \(path); run setup first") }
    if let limit {
        guard limit <= list.count else { throw ValidationError("--count \(limit) but \(path) holds \(list.count) devices") }
        list = Array(list.prefix(limit))
    }
    return list
}

// MARK: - /proc readings

/// CPU seconds of each thread of a process: "pid/tid comm" → utime + stime.
func threadCPUSeconds(_ pid: Int32) -> [String: Double] {
    var out: [String: Double] = [:]
    guard let tids = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return out }
    let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
    for tid in tids {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
              let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { continue }
        let comm = text[text.index(after: open)..<close]
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { continue }
        out["\(pid)/\(tid) \(comm)"] = (u + s) / tick
    }
    return out
}

/// Busy fraction of each thread between two readings (busiest first, threads under 1 % left out).
func threadUtilization(_ a: [String: Double], _ b: [String: Double], seconds: Double) -> [(String, Any?)] {
    b.compactMap { key, v -> (String, Double)? in
        let u = (v - (a[key] ?? 0)) / seconds
        return u >= 0.01 ? (key, (u * 1000).rounded() / 1000) : nil
    }.sorted { $0.1 > $1.1 }.map { ($0.0, $0.1) }
}

/// Summed CPU seconds of a comma-separated pid list (a pid that is gone counts 0).
struct PidSet {
    let pids: [Int32]
    init(_ list: String?) { pids = (list ?? "").split(separator: ",").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) } }
    var cpu: Double? { pids.isEmpty ? nil : pids.reduce(0.0) { $0 + (processCPUSeconds($1) ?? 0) } }
    /// CPU seconds of each process, keyed "pid comm".
    var processes: [String: Double] {
        pids.reduce(into: [:]) { all, pid in
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            if let c = processCPUSeconds(pid) { all["\(pid) \(comm)"] = c }
        }
    }
    var threads: [String: Double] { pids.reduce(into: [:]) { all, pid in all.merge(threadCPUSeconds(pid)) { a, _ in a } } }
}

// MARK: - statistics

/// Nearest-rank percentile of sorted nanosecond samples, in milliseconds.
func latencySummary(_ name: String, _ samples: [UInt64]) -> [(String, Any?)] {
    let s = samples.sorted()
    let mean = s.isEmpty ? nil : Double(s.reduce(0, &+)) / Double(s.count) / 1e6
    return [("\(name)_samples", s.count), ("\(name)_p50_ms", percentile(s, 0.5)), ("\(name)_p90_ms", percentile(s, 0.9)),
            ("\(name)_p99_ms", percentile(s, 0.99)), ("\(name)_p999_ms", percentile(s, 0.999)),
            ("\(name)_max_ms", s.last.map { Double($0) / 1e6 }), ("\(name)_mean_ms", mean)]
}

// MARK: - JSON out

// MARK: - small JSON readers for the hot path

/// The string value of `"key":"…"` in a flat JSON text (no escapes in the value: ids, tokens,
/// states). The key must be preceded by a quote, so `"id"` does not match `"device_id"`.
func jsonString(_ bytes: UnsafeRawBufferPointer, key: StaticString) -> String? {
    let k = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
    let n = bytes.count, m = k.count
    guard n > m + 4 else { return nil }
    var i = 0
    while i + m + 3 < n {
        if bytes[i] == 0x22 && bytes[i + m + 1] == 0x22 && bytes[i + m + 2] == 0x3A && memcmp(bytes.baseAddress! + i + 1, k.baseAddress!, m) == 0 {
            var j = i + m + 3
            while j < n && bytes[j] == 0x20 { j += 1 }
            guard j < n, bytes[j] == 0x22 else { return nil }
            let start = j + 1
            var end = start
            while end < n && bytes[end] != 0x22 { end += 1 }
            guard end < n else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        i += 1
    }
    return nil
}

func jsonString(_ bytes: [UInt8], key: StaticString) -> String? {
    bytes.withUnsafeBytes { jsonString($0, key: key) }
}
