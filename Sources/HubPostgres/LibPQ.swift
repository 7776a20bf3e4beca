import Foundation
import CLibPQ

/// What a step of `PQconnectPoll` asks for next.
enum LibPQPoll {
    case reading, writing, ok, failed
}

/// One result taken from libpq, already copied into Swift memory.
enum LibPQResult {
    case rows(PostgresRows)
    case error(PostgresError)
}

/// The one place that calls libpq for a connection: a thin wrapper that owns the `PGconn *`
/// and frees it in `deinit` (or earlier, in `finish()`). It knows nothing about loops or
/// pools; `PostgresConnection` drives it.
///
/// Every call here is non-blocking once `setNonBlocking()` succeeded, except `start`, which
/// may resolve a host name (so the pool calls it off the loop), and `LibPQCancel.cancel`.
final class LibPQConnection {
    private var conn: OpaquePointer?

    private init(conn: OpaquePointer) {
        self.conn = conn
        // libpq's default notice processor prints NOTICEs (e.g. "schema already exists,
        // skipping") to stderr; the hub's logs are JSON, so drop them here.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
    }

    deinit { finish() }

    /// `PQconnectStartParams`: begins a non-blocking connect. `keywords`/`values` are applied in
    /// order with `expand_dbname`, so a `dbname` holding a URL (`postgres://u:p@h:5432/db?...`)
    /// is expanded and overrides the defaults placed before it. May block for a DNS lookup of
    /// the first host: call it off the loop.
    static func start(keywords: [String], values: [String]) -> Result<LibPQConnection, PostgresError> {
        let cKeywords = keywords.map { strdup($0) }
        let cValues = values.map { strdup($0) }
        defer {
            cKeywords.forEach { free($0) }
            cValues.forEach { free($0) }
        }
        var kw: [UnsafePointer<CChar>?] = cKeywords.map { UnsafePointer($0) } + [nil]
        var vs: [UnsafePointer<CChar>?] = cValues.map { UnsafePointer($0) } + [nil]
        guard let conn = kw.withUnsafeMutableBufferPointer({ k in vs.withUnsafeMutableBufferPointer { v in PQconnectStartParams(k.baseAddress, v.baseAddress, 1) } }) else {
            return .failure(.connection("out of memory starting a connection"))
        }
        let wrapper = LibPQConnection(conn: conn)
        if PQstatus(conn) == CONNECTION_BAD {
            return .failure(.connection(wrapper.errorMessage))
        }
        return .success(wrapper)
    }

    /// Closes the connection (sends Terminate without waiting) and frees the `PGconn`.
    func finish() {
        if let conn {
            PQfinish(conn)
            self.conn = nil
        }
    }

    var isFinished: Bool { conn == nil }

    /// The socket, which can change between `connectPoll` steps (libpq tries the next address
    /// or host with a new socket). -1 when there is none.
    var socket: Int32 { conn.map { PQsocket($0) } ?? -1 }

    /// libpq's last error message, trimmed.
    var errorMessage: String {
        guard let conn, let m = PQerrorMessage(conn) else { return "connection closed" }
        let s = String(cString: m).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? "connection closed" : s
    }

    var isBad: Bool { conn.map { PQstatus($0) == CONNECTION_BAD } ?? true }

    /// One step of the connection state machine.
    func connectPoll() -> LibPQPoll {
        guard let conn else { return .failed }
        switch PQconnectPoll(conn) {
        case PGRES_POLLING_READING: return .reading
        case PGRES_POLLING_WRITING: return .writing
        case PGRES_POLLING_OK: return .ok
        default: return .failed
        }
    }

    func setNonBlocking() -> Bool {
        guard let conn else { return false }
        return PQsetnonblocking(conn, 1) == 0
    }

    /// The backend's process id (for logs and tests).
    var backendPID: Int32 { conn.map { PQbackendPID($0) } ?? 0 }

    /// `PQsendQueryParams` with text-format parameters and results. `false`: see `errorMessage`.
    func sendQuery(_ sql: String, _ params: EncodedParameters) -> Bool {
        guard let conn else { return false }
        let n = params.count
        if n == 0 {
            return PQsendQueryParams(conn, sql, 0, nil, nil, nil, nil, 0) == 1
        }
        return params.bytes.withUnsafeBufferPointer { raw -> Bool in
            let base = UnsafeRawPointer(raw.baseAddress!).assumingMemoryBound(to: CChar.self)
            var values = [UnsafePointer<CChar>?](repeating: nil, count: n)
            for i in 0..<n where params.offsets[i] >= 0 { values[i] = base + params.offsets[i] }
            return params.types.withUnsafeBufferPointer { types in
                values.withUnsafeBufferPointer { v in
                    PQsendQueryParams(conn, sql, Int32(n), types.baseAddress, v.baseAddress, nil, nil, 0) == 1
                }
            }
        }
    }

    /// `PQsendQuery`: the simple protocol, which allows several statements in one string. Only
    /// for trusted SQL without parameters (migration files).
    func sendScript(_ sql: String) -> Bool {
        guard let conn else { return false }
        return PQsendQuery(conn, sql) == 1
    }

    /// `PQflush`: 0 all sent, 1 more to send (wait for writable), -1 failed.
    func flush() -> Int32 {
        guard let conn else { return -1 }
        return PQflush(conn)
    }

    /// `PQconsumeInput`: reads what the socket has. `false` means the connection broke.
    func consumeInput() -> Bool {
        guard let conn else { return false }
        return PQconsumeInput(conn) == 1
    }

    var isBusy: Bool { conn.map { PQisBusy($0) == 1 } ?? false }

    /// True when the session is inside a transaction block (or an aborted one), so a pool knows
    /// to roll back before reusing it.
    var inTransaction: Bool {
        guard let conn else { return false }
        let s = PQtransactionStatus(conn)
        return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE
    }

    /// `PQgetResult`, copied into Swift and freed; nil once the command is complete.
    func nextResult() -> LibPQResult? {
        guard let conn, let res = PQgetResult(conn) else { return nil }
        defer { PQclear(res) }
        switch PQresultStatus(res) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_SINGLE_TUPLE:
            return .rows(Self.copyRows(res))
        case PGRES_EMPTY_QUERY:
            return .rows(.empty())
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR, PGRES_BAD_RESPONSE:
            let message = PQresultErrorField(res, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
                ?? PQresultErrorMessage(res).map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "unknown error"
            if let code = PQresultErrorField(res, Int32(UInt8(ascii: "C"))) {
                return .error(PostgresError.fromServer(sqlState: String(cString: code), message: message))
            }
            // No SQLSTATE: libpq made this error itself (lost connection, protocol error).
            return .error(.connection(message.isEmpty ? errorMessage : message))
        default:
            // COPY and pipeline states are never started by this client.
            return .error(.connection("unexpected result status \(PQresStatus(PQresultStatus(res)).map { String(cString: $0) } ?? "?")"))
        }
    }

    private static func copyRows(_ res: OpaquePointer) -> PostgresRows {
        let nRows = Int(PQntuples(res))
        let nCols = Int(PQnfields(res))
        var columns: [PostgresColumn] = []
        columns.reserveCapacity(nCols)
        for c in 0..<nCols {
            columns.append(PostgresColumn(name: PQfname(res, Int32(c)).map { String(cString: $0) } ?? "", typeOID: PQftype(res, Int32(c))))
        }
        var total = 0
        for r in 0..<nRows { for c in 0..<nCols { total += Int(PQgetlength(res, Int32(r), Int32(c))) } }
        var bytes = [UInt8]()
        bytes.reserveCapacity(total)
        var starts = [Int]()
        var lengths = [Int32]()
        starts.reserveCapacity(nRows * nCols)
        lengths.reserveCapacity(nRows * nCols)
        for r in 0..<nRows {
            for c in 0..<nCols {
                let (ri, ci) = (Int32(r), Int32(c))
                starts.append(bytes.count)
                if PQgetisnull(res, ri, ci) == 1 {
                    lengths.append(-1)
                } else {
                    let len = PQgetlength(res, ri, ci)
                    if len > 0, let p = PQgetvalue(res, ri, ci) {
                        bytes.append(contentsOf: UnsafeRawBufferPointer(start: p, count: Int(len)))
                    }
                    lengths.append(len)
                }
            }
        }
        let tag = PQcmdStatus(res).map { String(cString: $0) } ?? ""
        let tuples = PQcmdTuples(res).map { String(cString: $0) } ?? ""
        return PostgresRows(columns: columns, commandTag: tag, affectedRows: Int(tuples), rowCount: nRows, bytes: bytes, starts: starts, lengths: lengths)
    }

    /// A cancel token for the running statement (`PQgetCancel`: copies the keys, no I/O).
    func cancelToken() -> LibPQCancel? {
        guard let conn, let c = PQgetCancel(conn) else { return nil }
        return LibPQCancel(c)
    }
}

/// Owns a `PGcancel *`. `cancel()` opens a new connection to the server and blocks until the
/// request is delivered, so it is only ever called off the loop threads.
final class LibPQCancel: @unchecked Sendable {
    private let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQfreeCancel(handle) }

    /// Sends the cancel request; nil on success, else libpq's message. Blocking.
    func cancel() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let ok = PQcancel(handle, &buffer, Int32(buffer.count))
        return ok == 1 ? nil : String(cString: buffer)
    }
}
