/// How to reach PostgreSQL and how long to wait for it. Every limit of a connection is here,
/// with its default and the reason for it.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection URL or keyword string: `postgres://user:pass@host:5432/db?sslmode=disable`
    /// (any libpq parameter works in the query string, e.g. `sslmode=require` for Supabase).
    public var url: String

    /// Server-side `statement_timeout`, set on every connection when it connects: the server
    /// cancels a statement that runs longer and answers SQLSTATE 57014 (→ `.timeout`), and the
    /// connection stays usable. 0 disables it. Default 30 s: longer than any sane request.
    public var statementTimeout: Duration = .seconds(30)

    /// Client-side deadline of a statement, enforced by the connection's loop (checked every
    /// `sweepInterval`): the backstop when the server cannot answer (network partition, hung
    /// host). The caller gets `.timeout` at the deadline; a cancel request is sent off the loop,
    /// and a connection that does not become free within `cancelGrace` is dropped. Default:
    /// `statementTimeout` + 2 s, so the server's own timeout normally fires first.
    public var queryTimeout: Duration?

    /// Longest time a connect (TCP + TLS + authentication + session setup) may take. Default 5 s.
    public var connectTimeout: Duration = .seconds(5)

    /// After a client-side timeout, how long the connection gets to finish the cancelled
    /// statement before it is closed instead of reused. Default 2 s.
    public var cancelGrace: Duration = .seconds(2)

    /// `application_name`, visible in `pg_stat_activity`.
    public var applicationName: String = "devicehub"

    /// How often each loop checks deadlines (connect, statement, cancel grace). Deadlines are
    /// coarse by this much; one sweep per loop replaces a timer per statement. Default 100 ms.
    public var sweepInterval: Duration = .milliseconds(100)

    public init(url: String) {
        self.url = url
    }

    /// The client-side deadline actually used for a statement.
    var effectiveQueryTimeout: Duration {
        if let queryTimeout { return queryTimeout }
        if statementTimeout == .zero { return .seconds(300) }
        return statementTimeout + .seconds(2)
    }

    /// Keywords for `PQconnectStartParams`. Defaults come first; the URL (as an expanded
    /// `dbname`) overrides them, so a URL may still ask for `gssencmode=prefer`.
    var libpqParameters: (keywords: [String], values: [String]) {
        // gssencmode: a GSSAPI probe may block in Kerberos libraries; nobody runs the hub on
        // Kerberos, so it is off unless the URL asks for it.
        (["application_name", "gssencmode", "dbname"], [applicationName, "disable", url])
    }

    /// Session settings sent once after connecting, in one parameterized statement (one round
    /// trip). Text results depend on them: `timestamptz` in UTC ISO form, `bytea` as hex.
    var sessionSetup: (sql: String, params: [PostgresValue?]) {
        let ms = Int64(statementTimeout.nanoseconds / 1_000_000)
        return ("SELECT set_config('statement_timeout', $1, false), set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO, MDY', false), set_config('bytea_output', 'hex', false), set_config('client_encoding', 'UTF8', false)",
                [.text("\(ms)")])
    }
}

extension Duration {
    /// Whole nanoseconds (saturating), for the loop's monotonic clock.
    var nanoseconds: UInt64 {
        let (s, atto) = components
        if s < 0 { return 0 }
        let (ns, o) = UInt64(s).multipliedReportingOverflow(by: 1_000_000_000)
        if o { return .max }
        return ns &+ UInt64(atto / 1_000_000_000)
    }
}

/// Redacts the password of a connection URL for logs and error messages.
func redactedURL(_ url: String) -> String {
    guard let schemeEnd = url.range(of: "://"), let at = url[schemeEnd.upperBound...].firstIndex(of: "@") else { return url }
    let userinfo = url[schemeEnd.upperBound..<at]
    guard let colon = userinfo.firstIndex(of: ":") else { return url }
    return String(url[..<colon]) + ":***" + String(url[at...])
}
