import Foundation

/// Owns every metric of the process and renders the Prometheus text exposition format (0.0.4).
///
/// Creating a series takes a lock (rare: at start-up, or the first time a route answers with a
/// new status); updating one never does. Loop threads keep their own caches of the series they
/// touch, so the lock is off the request path.
public final class MetricsRegistry: @unchecked Sendable {
    public enum Kind: String { case counter, gauge, histogram }

    private struct Family {
        var name: String
        var help: String
        var kind: Kind
        var series: [(labels: String, metric: AnyObject)]
    }

    /// Shards per metric: one per event loop plus one shared.
    public let shards: Int
    private let lock = NSLock()
    private var families: [Family] = []
    private var index: [String: Int] = [:]
    private var seriesIndex: [String: AnyObject] = [:]
    /// Callbacks run at scrape time for values that are read, not counted (e.g. RSS).
    private var collectors: [() -> [(name: String, help: String, kind: Kind, value: Double)]] = []

    public init(loops: Int) { shards = loops + 1 }

    public func counter(_ name: String, help: String, labels: [(String, String)] = []) -> Counter {
        series(name, help: help, kind: .counter, labels: labels) { Counter(shards: self.shards) }
    }

    public func gauge(_ name: String, help: String, labels: [(String, String)] = []) -> Gauge {
        series(name, help: help, kind: .gauge, labels: labels) { Gauge(shards: self.shards) }
    }

    public func histogram(_ name: String, help: String, labels: [(String, String)] = [], buckets: [Double] = defaultLatencyBuckets) -> Histogram {
        series(name, help: help, kind: .histogram, labels: labels) { Histogram(boundsSeconds: buckets, shards: self.shards) }
    }

    /// Registers a value computed at scrape time.
    public func addCollector(_ collect: @escaping () -> [(name: String, help: String, kind: Kind, value: Double)]) {
        lock.lock(); defer { lock.unlock() }
        collectors.append(collect)
    }

    private func series<M: AnyObject>(_ name: String, help: String, kind: Kind, labels: [(String, String)], make: () -> M) -> M {
        let rendered = Self.renderLabels(labels)
        let key = name + rendered
        lock.lock(); defer { lock.unlock() }
        if let existing = seriesIndex[key] {
            guard let typed = existing as? M else { preconditionFailure("metric \(name) registered twice with different types") }
            return typed
        }
        let metric = make()
        if let i = index[name] {
            precondition(families[i].kind == kind, "metric \(name) registered with two kinds")
            families[i].series.append((rendered, metric))
        } else {
            index[name] = families.count
            families.append(Family(name: name, help: help, kind: kind, series: [(rendered, metric)]))
        }
        seriesIndex[key] = metric
        return metric
    }

    static func renderLabels(_ labels: [(String, String)]) -> String {
        if labels.isEmpty { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for ch in value {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }

    /// The whole exposition, families in registration order.
    public func render() -> String {
        lock.lock()
        let snapshot = families
        let extra = collectors
        lock.unlock()
        var out = ""
        out.reserveCapacity(8192)
        for family in snapshot {
            out += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) \(family.kind.rawValue)\n"
            for (labels, metric) in family.series {
                switch metric {
                case let c as Counter: out += "\(family.name)\(labels) \(c.value)\n"
                case let g as Gauge: out += "\(family.name)\(labels) \(g.value)\n"
                case let h as Histogram: renderHistogram(h, name: family.name, labels: labels, into: &out)
                default: break
                }
            }
        }
        for collect in extra {
            for m in collect() {
                out += "# HELP \(m.name) \(m.help)\n# TYPE \(m.name) \(m.kind.rawValue)\n\(m.name) \(Self.format(m.value))\n"
            }
        }
        return out
    }

    private func renderHistogram(_ h: Histogram, name: String, labels: String, into out: inout String) {
        // Bucket lines carry an extra `le` label next to the series' own labels.
        let inner = labels.isEmpty ? "" : String(labels.dropFirst().dropLast()) + ","
        var cumulative = 0
        for (i, bound) in h.bounds.enumerated() {
            cumulative += h.cells.total(at: i)
            out += "\(name)_bucket{\(inner)le=\"\(Self.format(Double(bound) / 1e9))\"} \(cumulative)\n"
        }
        cumulative += h.cells.total(at: h.bounds.count)
        out += "\(name)_bucket{\(inner)le=\"+Inf\"} \(cumulative)\n"
        out += "\(name)_sum\(labels) \(Self.format(Double(h.cells.total(at: h.bounds.count + 1)) / 1e9))\n"
        out += "\(name)_count\(labels) \(h.cells.total(at: h.bounds.count + 2))\n"
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int(v)) }
        return String(v)
    }
}
