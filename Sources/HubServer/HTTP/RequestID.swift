/// Request ids: an incoming `X-Request-ID` is kept when it is sane (1–128 characters of
/// `A-Z a-z 0-9 - _ . : /`), so a trace crosses the load balancer; otherwise one is made.
///
/// A made id is `<process prefix>-<loop>-<counter>`: unique within the process by the loop's
/// counter, across processes and restarts by a random prefix (6 base-36 characters, 2e9
/// values), and free of locks and syscalls. It stays within 15 UTF-8 bytes, Swift's inline
/// small-string size, for the first 2e9 requests of a loop, so making one allocates nothing.
public enum RequestID {
    public static let maxLength = 128

    public static func isAcceptable(_ value: String) -> Bool {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
        for b in utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                 UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"):
                continue
            default:
                return false
            }
        }
        return true
    }

    /// A random prefix for this process.
    public static let processPrefix: String = {
        var g = SystemRandomNumberGenerator()
        let n = g.next() as UInt64
        let s = String(n % 2_176_782_336, radix: 36) // 36^6
        return String(repeating: "0", count: max(0, 6 - s.count)) + s
    }()
}

/// Per-loop id source (loop thread only).
struct RequestIDGenerator {
    private let prefix: String
    private var counter: UInt64 = 0

    init(loop: Int) { prefix = "\(RequestID.processPrefix)-\(loop)-" }

    mutating func next() -> String {
        counter &+= 1
        return prefix + String(counter, radix: 36)
    }
}
