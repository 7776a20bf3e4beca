/// Redis Cluster's hash slots: which of the 16,384 slots a key belongs to, and which key of a
/// command decides where the command goes.
///
/// The slot is CRC16 (XMODEM: polynomial 0x1021, initial value 0, no reflection) of the key's
/// hash tag, modulo 16,384. The hash tag is the part between the first `{` and the first `}`
/// after it, when that part is not empty; otherwise the whole key. So `dh:queue:{qb7}:due` and
/// `dh:queue:{qb7}:seq` share a slot, which is what lets one Lua script touch both.
public enum RedisClusterSlot {
    public static let count = 16_384

    /// The slot of `key` (its raw bytes).
    public static func of<Bytes: Collection<UInt8>>(_ key: Bytes) -> Int {
        Int(crc16(hashTag(key)) & 0x3fff)
    }

    /// The slot of a text key (its UTF-8 bytes).
    public static func of(_ key: String) -> Int { of(key.utf8) }

    /// The slot of an argument. Reads the text's UTF-8 in place: routing computes this for
    /// every command, so no byte array is made.
    public static func of(_ key: RedisArgument) -> Int {
        switch key.storage {
        case .text(let text): return of(text.utf8)
        case .bytes(let bytes): return of(bytes)
        }
    }

    /// The bytes that are hashed: the non-empty text inside the first `{…}`, else the key.
    static func hashTag<Bytes: Collection<UInt8>>(_ key: Bytes) -> Bytes.SubSequence {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key[...] }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else { return key[...] }
        return key[afterOpen..<close]
    }

    /// CRC16/XMODEM, table driven (one lookup per byte).
    public static func crc16<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(byte))]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { n in
        var crc = UInt16(n) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    /// The slot a command must be sent to, or nil when it names no key (`PING`, `SCRIPT LOAD`,
    /// `CLUSTER SLOTS`, an `EVAL` with no keys), which any node can run.
    ///
    /// The first key decides: the hub's multi-key commands (its Lua scripts) keep all their
    /// keys in one slot, and a command that does not is refused by Redis with `CROSSSLOT`
    /// rather than silently split here. Keys sit at argument 1 for every command the hub sends,
    /// except the script commands (`EVALSHA sha numkeys key…`) and container commands whose
    /// key follows a subcommand (`OBJECT ENCODING key`, `MEMORY USAGE key`).
    public static func ofCommand(_ args: [RedisArgument]) -> Int? {
        guard args.count >= 2 else { return nil }
        let name = args[0]
        switch name.count {
        case 4:
            if name.equalsIgnoringCase("EVAL") { return scriptKeySlot(args) }
            if name.equalsIgnoringCase("PING") || name.equalsIgnoringCase("ECHO") || name.equalsIgnoringCase("INFO")
                || name.equalsIgnoringCase("AUTH") { return nil }
        case 5:
            if name.equalsIgnoringCase("FCALL") { return scriptKeySlot(args) }
        case 6:
            if name.equalsIgnoringCase("SCRIPT") || name.equalsIgnoringCase("CONFIG") || name.equalsIgnoringCase("CLIENT")
                || name.equalsIgnoringCase("SELECT") { return nil }
            if name.equalsIgnoringCase("OBJECT"), args.count >= 3 { return of(args[2]) }
            if name.equalsIgnoringCase("MEMORY"), args.count >= 3 { return of(args[2]) }
        case 7:
            if name.equalsIgnoringCase("EVALSHA") || name.equalsIgnoringCase("EVAL_RO") { return scriptKeySlot(args) }
            if name.equalsIgnoringCase("CLUSTER") || name.equalsIgnoringCase("COMMAND") { return nil }
        case 10:
            if name.equalsIgnoringCase("EVALSHA_RO") { return scriptKeySlot(args) }
        default:
            break
        }
        return of(args[1])
    }

    /// `EVAL… script numkeys key…`: the first key's slot, nil with no keys.
    private static func scriptKeySlot(_ args: [RedisArgument]) -> Int? {
        guard args.count >= 4 else { return nil }
        let count: Int?
        switch args[2].storage {
        case .text(let text): count = Int(text)
        case .bytes(let bytes): count = Int(String(decoding: bytes, as: UTF8.self))
        }
        guard let n = count, n > 0 else { return nil }
        return of(args[3])
    }
}
