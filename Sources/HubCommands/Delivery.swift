import struct Foundation.UUID
import HubStore

/// One command handed to a device by a claim: what the device runs and the lease it holds.
public struct Delivery: Sendable, Equatable {
    public var id: UUID
    /// `{"kind":..,"args":{..}}` as the queue keeps it.
    public var payload: [UInt8]
    public var priority: QueuePriority
    public var leaseToken: UUID
    public var leaseExpiresAt: StoreMillis
    public var attempt: Int

    /// The wire item of a claim answer (REST and socket alike):
    /// `{"id","kind","args","priority","lease_token","lease_expires_at","attempt"}`, built by
    /// splicing the stored payload (no decode and re-encode of the arguments).
    public var json: String {
        var out = "{\"id\":\"" + id.lowercasedString + "\","
        // The payload is an object: drop its braces and splice its members in.
        if payload.count > 2 {
            out += String(decoding: payload[1..<(payload.count - 1)], as: UTF8.self) + ","
        }
        out += "\"priority\":\"" + priority.rawValue + "\",\"lease_token\":\"" + leaseToken.lowercasedString
            + "\",\"lease_expires_at\":\"" + WireText.time(millis: leaseExpiresAt) + "\",\"attempt\":" + String(attempt) + "}"
        return out
    }

    /// The queue payload of a command: its kind and arguments (validated JSON object text).
    static func payload(kind: String, arguments: String) -> [UInt8] {
        Array(("{\"kind\":\"" + kind + "\",\"args\":" + arguments + "}").utf8)
    }
}

/// A lease operation's answer: the command's state and, while it is claimed, its deadline.
public struct LeaseState: Sendable, Equatable {
    public var id: UUID
    public var state: String
    public var leaseExpiresAt: StoreMillis?

    public var json: String {
        var fields: [(String, String)] = [("id", "\"" + id.lowercasedString + "\""), ("state", "\"" + state + "\"")]
        if let at = leaseExpiresAt { fields.append(("lease_expires_at", "\"" + WireText.time(millis: at) + "\"")) }
        return WireText.object(fields)
    }
}

/// How a device's result is kept in the hot queue's outcome (`QueueOutcome.result`): the
/// result's JSON (status, exit code), a newline, the output. The queue compares these bytes for
/// idempotency; the reconciler reads them back when the record missed the result.
enum ResultText {
    static func encode(resultJSON: String, output: String?) -> [UInt8] {
        Array((resultJSON + "\n" + (output ?? "")).utf8)
    }

    static func decode(_ bytes: [UInt8]) -> (resultJSON: String, output: String) {
        let split = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        let output = split < bytes.endIndex ? String(decoding: bytes[(split + 1)...], as: UTF8.self) : ""
        return (String(decoding: bytes[..<split], as: UTF8.self), output)
    }
}
