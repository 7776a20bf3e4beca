import ArgumentParser
import Foundation
import HubHTTP
import HubHTTPClient

// Blocking HTTP plumbing for the clients' setup phases (never a measured path): base URLs,
// running async work from a synchronous command, one JSON request through HubHTTPClient, and a
// bounded number of such requests in flight.

/// `http://HOST:PORT` → (host, port, base without a trailing slash).
public func parseBase(_ url: String, option: String) throws -> (host: String, port: Int, base: String) {
    guard url.hasPrefix("http://") else { throw ValidationError("\(option) must start with http:// (got \(url))") }
    var rest = url.dropFirst(7)
    while rest.hasSuffix("/") { rest = rest.dropLast() }
    guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
        throw ValidationError("\(option) needs an explicit port (got \(url))")
    }
    return (String(rest[..<colon]), port, "http://" + rest)
}

/// Runs async work from a synchronous command and waits for it.
public func blocking<T>(_ body: @escaping () async throws -> T) throws -> T {
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
public func call(_ client: HTTPClient, _ method: HTTPMethod, _ url: String, bearer: String? = nil, json: [String: Any]? = nil,
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
public func concurrently<T: Sendable>(_ count: Int, concurrency: Int, _ work: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
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
