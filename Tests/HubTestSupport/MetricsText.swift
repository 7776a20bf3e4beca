/// Samples read out of Prometheus text (`MetricsRegistry.render()`, `GET /metrics`).
///
/// Counters are registered when their owner is created, so a series is there at 0 from
/// start-up: a test that only looks for the name, or for "at least 0", proves nothing. Read the
/// value before causing the event and again after, and assert that it moved.
public enum MetricsText {
    /// The value of one series, written exactly as rendered (`name` or `name{label="v"}`);
    /// nil when the text has no such series.
    public static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return line.split(separator: " ").last.flatMap { Double($0) }
        }
        return nil
    }

    /// The sum of a metric's samples over all its label sets (0 when it has none).
    public static func sum(_ text: String, _ name: String) -> Double {
        text.split(separator: "\n").filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }
}
