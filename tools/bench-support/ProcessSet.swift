import Foundation

// CPU readings of the processes under test (hubs, stores) from /proc, per process and per
// thread, taken around a measured window.

/// CPU seconds of each thread of a process: "pid/tid comm" → utime + stime.
public func threadCPUSeconds(_ pid: Int32) -> [String: Double] {
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
public func threadUtilization(_ a: [String: Double], _ b: [String: Double], seconds: Double) -> [(String, Any?)] {
    b.compactMap { key, v -> (String, Double)? in
        let u = (v - (a[key] ?? 0)) / seconds
        return u >= 0.01 ? (key, (u * 1000).rounded() / 1000) : nil
    }.sorted { $0.1 > $1.1 }.map { ($0.0, $0.1) }
}

/// Summed CPU seconds of a comma-separated pid list (a pid that is gone counts 0).
public struct PidSet {
    public let pids: [Int32]
    public init(_ list: String?) { pids = (list ?? "").split(separator: ",").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) } }
    public var cpu: Double? { pids.isEmpty ? nil : pids.reduce(0.0) { $0 + (processCPUSeconds($1) ?? 0) } }
    /// CPU seconds of each process, keyed "pid comm".
    public var processes: [String: Double] {
        pids.reduce(into: [:]) { all, pid in
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            if let c = processCPUSeconds(pid) { all["\(pid) \(comm)"] = c }
        }
    }
    public var threads: [String: Double] { pids.reduce(into: [:]) { all, pid in all.merge(threadCPUSeconds(pid)) { a, _ in a } } }
}
