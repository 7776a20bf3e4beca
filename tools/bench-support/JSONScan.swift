import Foundation

// Small JSON readers for the clients' hot paths: the hub's messages are flat enough that a
// byte scan for one key beats a full parse per message, which would cost the client more CPU
// than the hub spends on it.

/// The string value of `"key":"…"` in a flat JSON text (no escapes in the value: ids, tokens,
/// states). The key must be preceded by a quote, so `"id"` does not match `"device_id"`.
public func jsonString(_ bytes: UnsafeRawBufferPointer, key: StaticString) -> String? {
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

public func jsonString(_ bytes: [UInt8], key: StaticString) -> String? {
    bytes.withUnsafeBytes { jsonString($0, key: key) }
}

/// The unsigned integer right after the first `marker` in `bytes`, skipping up to three
/// separator bytes (`":`, `=`, spaces): finds a number the sender embedded in a value it
/// chose, wherever the hub put that value. nil without the marker or digits.
public func number(after marker: StaticString, in bytes: UnsafeRawBufferPointer, from start: Int = 0) -> UInt64? {
    guard let hit = firstIndex(of: marker, in: bytes, from: start) else { return nil }
    var i = hit + marker.utf8CodeUnitCount
    var skipped = 0
    while i < bytes.count, skipped < 3, !(bytes[i] >= 0x30 && bytes[i] <= 0x39) { i += 1; skipped += 1 }
    var value: UInt64 = 0
    var digits = 0
    while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39, digits < 19 {
        value = value &* 10 &+ UInt64(bytes[i] - 0x30)
        i += 1
        digits += 1
    }
    return digits > 0 ? value : nil
}

/// Where `needle` first occurs in `bytes` at or after `start` (memchr for its first byte, then
/// memcmp; Glibc's memmem is a GNU extension the Swift module does not export).
public func firstIndex(of needle: StaticString, in bytes: UnsafeRawBufferPointer, from start: Int = 0) -> Int? {
    let m = needle.utf8CodeUnitCount
    guard m > 0, let base = bytes.baseAddress, bytes.count - start >= m, start >= 0 else { return nil }
    let first = Int32(needle.utf8Start.pointee)
    var i = start
    let last = bytes.count - m
    while i <= last {
        guard let p = memchr(base + i, first, last - i + 1) else { return nil }
        let at = base.distance(to: UnsafeRawPointer(p))
        if memcmp(base + at, needle.utf8Start, m) == 0 { return at }
        i = at + 1
    }
    return nil
}
