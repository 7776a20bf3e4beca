// jwt-bench: verifications per second of HubAuth's Supabase JWT verifier on one thread,
// uncached (ES256, RS256, HS256) and cached, next to `openssl speed` for the same primitives
// measured in the same run. Build and run (pin to one core so openssl gets the same one):
//
//   swift build -c release --product jwt-bench
//   taskset -c 0 .build/release/jwt-bench [--seconds 3] [--rounds 3]
//
// Rounds alternate ours and openssl so that load from elsewhere on a shared machine hits both;
// each figure is the median over rounds. Targets: uncached ≥ 0.8 × OpenSSL verify/s, cached
// ≥ 1,000,000/s.
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation
@_spi(Benchmark) import HubAuth
import JWTKit

/// Writes a line unbuffered, so progress shows when the output goes to a file.
func report(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Command line: `--seconds S` per measurement (default 3), `--rounds N` (default 3),
/// `--only es256|rs256|hs256|cached|parse` to run one measurement alone (for a profiler).
let (seconds, rounds, only): (Double, Int, String?) = {
    var seconds = 3.0, rounds = 3
    var only: String?
    var args = CommandLine.arguments.dropFirst()
    while let a = args.popFirst() {
        switch a {
        case "--seconds": seconds = Double(args.popFirst() ?? "") ?? seconds
        case "--rounds": rounds = Int(args.popFirst() ?? "") ?? rounds
        case "--only": only = args.popFirst()
        default:
            report("usage: jwt-bench [--seconds S] [--rounds N] [--only es256|rs256|hs256|cached|parse]")
            exit(2)
        }
    }
    return (seconds, rounds, only)
}()

// MARK: - Keys and tokens

/// Runs a tool and returns its stdout. Spawned with posix_spawn and an empty signal mask with
/// default dispositions: threads of this process block some signals, a child inherits that
/// mask, and `openssl speed` ends each measurement with SIGALRM (with it blocked, it never ends).
func run(_ tool: String, _ arguments: [String]) throws -> String {
    var pipeFDs: [Int32] = [0, 0]
    guard pipe(&pipeFDs) == 0 else { throw BenchError("pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    var empty = sigset_t(), all = sigset_t()
    sigemptyset(&empty)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([tool] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, tool, &actions, &attributes, argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    posix_spawnattr_destroy(&attributes)
    close(pipeFDs[1])
    guard rc == 0 else {
        close(pipeFDs[0])
        throw BenchError("cannot start \(tool): \(rc)")
    }
    let data = FileHandle(fileDescriptor: pipeFDs[0], closeOnDealloc: true).readDataToEndOfFile()
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    guard status == 0 else { throw BenchError("\(tool) \(arguments.joined(separator: " ")) failed (status \(status))") }
    return String(decoding: data, as: UTF8.self)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// A Supabase access token's claims (what GoTrue issues), ~800 bytes once signed.
struct SupabaseClaimsPayload: JWTPayload {
    struct AMR: Codable { var method: String; var timestamp: Int }
    var iss: String
    var aud: String
    var exp: Int
    var iat: Int
    var sub: String
    var email: String
    var phone: String
    var app_metadata: [String: [String]]
    var user_metadata: [String: String]
    var role: String
    var aal: String
    var amr: [AMR]
    var session_id: String
    var is_anonymous: Bool
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

let now = Int(Date().timeIntervalSince1970)
let issuer = "https://abcdefghijklmnopqrst.supabase.co/auth/v1"
let secret = "super-secret-jwt-token-with-at-least-32-characters-long"
func claims(_ i: Int = 0) -> SupabaseClaimsPayload {
    SupabaseClaimsPayload(
        iss: issuer, aud: "authenticated", exp: now + 3600, iat: now - i, sub: UUID().uuidString.lowercased(),
        email: "someone.with.a.long.address@example.com", phone: "",
        app_metadata: ["provider": ["email"], "providers": ["email", "github"], "orgs": ["acme", "globex"]],
        user_metadata: ["full_name": "Some One", "avatar_url": "https://example.com/a.png"], role: "authenticated",
        aal: "aal1", amr: [SupabaseClaimsPayload.AMR(method: "password", timestamp: now - 60)], session_id: UUID().uuidString.lowercased(),
        is_anonymous: false)
}

let ecKey = ES256PrivateKey()
let rsaKey = try Insecure.RSA.PrivateKey(pem: try run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]))
/// Claims serialised as Supabase's GoTrue (Go's encoding/json) does: `/` not escaped.
let serializer: DefaultJWTSerializer = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .withoutEscapingSlashes
    return DefaultJWTSerializer(jsonEncoder: encoder)
}()
let signers = JWTKeyCollection(defaultJWTSerializer: serializer)
await signers.add(ecdsa: ecKey, kid: "ec-1")
await signers.add(rsa: rsaKey, digestAlgorithm: .sha256, kid: "rsa-1")
let hmacSigner = JWTKeyCollection(defaultJWTSerializer: serializer)
await hmacSigner.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)

let ecParams = ecKey.publicKey.parameters!
let rsaParams = try rsaKey.publicKey.getKeyPrimitives()
let jwks = """
    {"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"ec-1","x":"\(ecParams.x)","y":"\(ecParams.y)"},\
    {"kty":"RSA","alg":"RS256","use":"sig","kid":"rsa-1","n":"\(base64URL(rsaParams.modulus))","e":"\(base64URL(rsaParams.publicExponent))"}]}
    """
let keys = try await JWKSKeys.parse(jwks: Array(jwks.utf8))
guard keys.keyIDs == ["ec-1", "rsa-1"] else { throw BenchError("JWKS not loaded: \(keys.skipped)") }
let verifier = try await SupabaseJWTVerifier(
    configuration: SupabaseJWTConfiguration(issuer: issuer, hs256Secret: secret), keys: keys)

let es256 = Array(try await signers.sign(claims(), kid: "ec-1").utf8)
let rs256 = Array(try await signers.sign(claims(), kid: "rsa-1").utf8)
let hs256 = Array(try await hmacSigner.sign(claims()).utf8)
var minted: [[UInt8]] = []
for i in 0..<1024 { minted.append(Array(try await signers.sign(claims(i), kid: "ec-1").utf8)) }
let cycling = minted
for t in [es256, rs256, hs256] + cycling {
    guard case .success = verifier.verify(t, nowSeconds: Int64(now)) else { throw BenchError("a benchmark token does not verify") }
}
report("tokens: ES256 \(es256.count) B, RS256 \(rs256.count) B, HS256 \(hs256.count) B")

// MARK: - Measurement

/// CPU time of the calling thread, in seconds.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Operations per second of CPU time on this thread, run for `seconds` of CPU time. CPU time,
/// not wall time, because that is what `openssl speed` divides by (its default; `-elapsed`
/// switches it to wall time): on a shared 2-core machine wall-clock rates mostly measure the
/// neighbours.
@inline(never)
func rate(_ body: () -> Bool) -> Double {
    let start = threadCPUSeconds()
    var n = 0
    var ok = true
    var elapsed = 0.0
    repeat {
        for _ in 0..<64 { ok = body() && ok }
        n += 64
        elapsed = threadCPUSeconds() - start
    } while elapsed < seconds
    precondition(ok, "a verification failed during the benchmark")
    return Double(n) / elapsed
}

func uncached(_ token: [UInt8]) -> Double {
    rate { if case .success = verifier.verify(token, nowSeconds: Int64(now)) { true } else { false } }
}

func cachedSame() -> Double {
    let cache = VerifiedTokenCache()
    return rate { if case .success = verifier.verify(es256, nowSeconds: Int64(now), cache: cache) { true } else { false } }
}

func cachedCycling() -> Double {
    let cache = VerifiedTokenCache()
    var i = 0
    return rate {
        i = (i + 1) & 1023
        if case .success = verifier.verify(cycling[i], nowSeconds: Int64(now), cache: cache) { return true } else { return false }
    }
}

func parseOurs() -> Double { rate { verifier._parseWithoutVerifying(es256) } }

func parseJWTKit() -> Double {
    let parser = DefaultJWTParser()
    return rate { (try? parser.parse(es256, as: SupabaseClaimsPayload.self)) != nil }
}

/// `openssl speed -seconds S ecdsap256 rsa2048`: verify/s for both (column found by header).
func opensslSpeed() throws -> (ecdsa: Double, rsa: Double) {
    let text = try run("openssl", ["speed", "-seconds", String(Int(seconds.rounded(.up))), "ecdsap256", "rsa2048"])
    var ecdsa: Double?, rsa: Double?
    var verifyFromEnd: Int?
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if let i = fields.firstIndex(of: "verify/s") {
            verifyFromEnd = fields.count - 1 - i
            continue
        }
        guard let back = verifyFromEnd, fields.count > back else { continue }
        let value = Double(fields[fields.count - 1 - back])
        if line.contains("rsa 2048 bits") { rsa = value }
        if line.contains("ecdsa (nistp256)") { ecdsa = value }
    }
    guard let ecdsa, let rsa else { throw BenchError("could not read openssl speed output:\n\(text)") }
    return (ecdsa, rsa)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func fmt(_ x: Double) -> String {
    let n = Int(x.rounded())
    var s = String(n)
    var i = s.count - 3
    while i > 0 {
        s.insert(",", at: s.index(s.startIndex, offsetBy: i))
        i -= 3
    }
    return s
}

if let only {
    let r: Double
    switch only {
    case "es256": r = uncached(es256)
    case "rs256": r = uncached(rs256)
    case "hs256": r = uncached(hs256)
    case "cached": r = cachedSame()
    case "parse": r = parseOurs()
    default: throw BenchError("unknown measurement \(only)")
    }
    report("\(only): \(fmt(r))/s")
    exit(0)
}

report(try run("openssl", ["version"]).trimmingCharacters(in: .whitespacesAndNewlines))
var results: [String: [Double]] = [:]
for round in 1...rounds {
    let measured: [(String, () throws -> Double)] = [
        ("ES256 uncached", { uncached(es256) }),
        ("RS256 uncached", { uncached(rs256) }),
        ("HS256 uncached", { uncached(hs256) }),
        ("cached, one token", cachedSame),
        ("cached, 1024 tokens", cachedCycling),
        ("parse only: HubAuth JSONScanner", parseOurs),
        ("parse only: jwt-kit DefaultJWTParser", parseJWTKit),
    ]
    for (name, body) in measured { results[name, default: []].append(try body()) }
    let o = try opensslSpeed()
    results["openssl ecdsap256 verify", default: []].append(o.ecdsa)
    results["openssl rsa2048 verify", default: []].append(o.rsa)
    report("round \(round): " + ["ES256 uncached", "RS256 uncached", "openssl ecdsap256 verify", "openssl rsa2048 verify", "cached, one token"]
        .map { "\($0) \(fmt(results[$0]!.last!))" }.joined(separator: ", "))
}

report("\nmedians of \(rounds) rounds, \(seconds) s of CPU each, one thread, per CPU-second (as openssl speed):")
report("| measurement | per second | µs each |")
report("|---|---|---|")
for name in ["ES256 uncached", "RS256 uncached", "HS256 uncached", "cached, one token", "cached, 1024 tokens",
             "parse only: HubAuth JSONScanner", "parse only: jwt-kit DefaultJWTParser",
             "openssl ecdsap256 verify", "openssl rsa2048 verify"] {
    let m = median(results[name]!)
    report("| \(name) | \(fmt(m)) | \(String(format: "%.3f", 1e6 / m)) |")
}
let es = median(results["ES256 uncached"]!) / median(results["openssl ecdsap256 verify"]!)
let rs = median(results["RS256 uncached"]!) / median(results["openssl rsa2048 verify"]!)
let cached = median(results["cached, one token"]!)
report("\nES256 uncached / OpenSSL ecdsap256 verify: \(String(format: "%.2f", es)) (target ≥ 0.80) \(es >= 0.8 ? "met" : "NOT met")")
report("RS256 uncached / OpenSSL rsa2048 verify:   \(String(format: "%.2f", rs)) (target ≥ 0.80) \(rs >= 0.8 ? "met" : "NOT met")")
report("cached: \(fmt(cached))/s (target ≥ 1,000,000) \(cached >= 1_000_000 ? "met" : "NOT met")")
