#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import JWTKit

/// An immutable snapshot of the verification keys of a JWKS document, by `kid`.
///
/// Built off the hot path (`parse(jwks:)`), then read without locks by every loop: all stored
/// properties are `let` and `Sendable` (jwt-kit's `JWTAlgorithm` is `Sendable`), so the class is
/// `Sendable` without `@unchecked`. Each usable key becomes a jwt-kit verifier bound to exactly
/// one algorithm, fixed here from the key itself (EC P-256 → ES256, RSA ≥ 2048 bits → RS256),
/// so a token can never pick the algorithm a key is used with.
public final class JWKSKeys: Sendable {
    /// A key of the document that the snapshot does not hold, and why.
    public struct SkippedKey: Sendable, Equatable, CustomStringConvertible {
        public let keyID: String?
        public let reason: String
        public var description: String { "\(keyID ?? "(no kid)"): \(reason)" }
    }

    struct Key: Sendable {
        let id: [UInt8]
        let keyID: String
        let algorithm: JWSAlgorithm
        let verifier: any JWTAlgorithm
        /// What identifies the key material (`kty`, `alg` and the public parameters), for
        /// telling whether a refetched document changed anything.
        let fingerprint: String
    }

    let keys: [Key]
    /// Keys of the document that were left out (unsupported type, curve or algorithm, `use`
    /// other than `sig`, no `kid`, a repeated `kid`, unreadable parameters, RSA < 2048 bits).
    public let skipped: [SkippedKey]

    /// The usable key ids, in document order.
    public var keyIDs: [String] { keys.map(\.keyID) }
    public var isEmpty: Bool { keys.isEmpty }

    /// No keys: only HS256 (with a configured secret) can verify.
    public static let empty = JWKSKeys(keys: [], skipped: [])

    /// Documents larger than this are refused (Supabase's is < 2 KiB).
    public static let maxDocumentBytes = 1 << 20
    /// Usable keys beyond this many are skipped (a JWKS holds a handful during rotation).
    public static let maxKeys = 32

    init(keys: [Key], skipped: [SkippedKey]) {
        self.keys = keys
        self.skipped = skipped
    }

    /// Errors that make a whole document unusable (individual bad keys are only skipped).
    public struct DocumentError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Builds a snapshot from JWKS JSON (`{"keys": [...]}`).
    ///
    /// `async` because jwt-kit hands out its verifier objects only through the
    /// `JWTKeyCollection` actor; this runs at startup and on refresh, never per token.
    public static func parse(jwks: [UInt8]) async throws(DocumentError) -> JWKSKeys {
        guard jwks.count <= maxDocumentBytes else { throw DocumentError(description: "JWKS larger than \(maxDocumentBytes) bytes") }
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(jwks))
        } catch {
            throw DocumentError(description: "not a JWKS document: \(error)")
        }
        let collection = JWTKeyCollection()
        var keys: [Key] = []
        var skipped: [SkippedKey] = []
        for element in document.keys {
            func skip(_ reason: String) { skipped.append(SkippedKey(keyID: element.kid, reason: reason)) }
            if let kty = element.kty, kty != "EC", kty != "RSA" { skip("kty \(kty) is not EC or RSA"); continue }
            let jwk: JWK
            switch element.jwk {
            case .success(let k): jwk = k
            case .failure(let error):
                skip("unreadable JWK: \(error)")
                continue
            }
            guard let kid = element.kid, !kid.isEmpty else { skip("no kid"); continue }
            if let use = element.use, use != "sig" { skip("use is \(use), not sig"); continue }
            if let ops = element.keyOps, !ops.contains("verify") { skip("key_ops lacks verify"); continue }
            if keys.contains(where: { $0.keyID == kid }) { skip("kid repeated"); continue }
            if keys.count == maxKeys { skip("more than \(maxKeys) usable keys"); continue }
            let identifier = JWKIdentifier(string: kid)
            let algorithm: JWSAlgorithm
            let fingerprint: String
            do {
                switch jwk.keyType {
                case .ecdsa:
                    guard jwk.curve?.rawValue == "P-256" else { skip("EC curve \(jwk.curve?.rawValue ?? "missing") is not P-256"); continue }
                    guard jwk.algorithm == nil || jwk.algorithm == .es256 else { skip("alg \(jwk.algorithm!.rawValue) on an EC P-256 key"); continue }
                    guard let x = jwk.x, let y = jwk.y else { skip("EC key without x/y"); continue }
                    // Only the public coordinates are used, even if the document leaks `d`.
                    await collection.add(ecdsa: try ES256PublicKey(parameters: (x, y)), kid: identifier)
                    algorithm = .es256
                    fingerprint = "EC|\(x)|\(y)"
                case .rsa:
                    guard jwk.algorithm == nil || jwk.algorithm == .rs256 else { skip("alg \(jwk.algorithm!.rawValue) on an RSA key (only RS256)"); continue }
                    guard let n = jwk.modulus, let e = jwk.exponent else { skip("RSA key without n/e"); continue }
                    await collection.add(rsa: try Insecure.RSA.PublicKey(modulus: n, exponent: e), digestAlgorithm: .sha256, kid: identifier)
                    algorithm = .rs256
                    fingerprint = "RSA|\(n)|\(e)"
                default:
                    skip("kty \(jwk.keyType.rawValue) is not EC or RSA")
                    continue
                }
                let verifier = try await collection.getKey(for: identifier)
                guard verifier.name == algorithm.name else { skip("jwt-kit built \(verifier.name) for \(algorithm.name)"); continue }
                keys.append(Key(id: Array(kid.utf8), keyID: kid, algorithm: algorithm, verifier: verifier, fingerprint: "\(kid)|\(fingerprint)"))
            } catch {
                skip("unusable key: \(error)")
            }
        }
        return JWKSKeys(keys: keys, skipped: skipped)
    }

    /// The key whose `kid` equals `id` (UTF-8 bytes). A linear scan: a JWKS holds a handful of
    /// keys, and comparing bytes avoids building a `String` per token.
    @inline(__always)
    func key(id: UnsafeRawBufferPointer) -> Key? {
        for key in keys where key.id.count == id.count {
            if key.id.withUnsafeBytes({ bytesEqual($0, id) }) { return key }
        }
        return nil
    }

    /// True when both snapshots hold the same keys (ids, algorithms, public parameters), in
    /// any order: a refresh that changes nothing keeps the current snapshot (and every loop's
    /// cached verifications).
    public func hasSameKeys(as other: JWKSKeys) -> Bool {
        Set(keys.map(\.fingerprint)) == Set(other.keys.map(\.fingerprint)) && keys.count == other.keys.count
    }
}

/// `{"keys": [...]}`, each element decoded on its own so one bad key does not void the set.
private struct Document: Decodable {
    let keys: [Element]
}

private struct Element: Decodable {
    let jwk: Result<JWK, any Error>
    let kty: String?
    let kid: String?
    let use: String?
    let keyOps: [String]?

    private enum CodingKeys: String, CodingKey {
        case kty, kid, use
        case keyOps = "key_ops"
    }

    init(from decoder: any Decoder) throws {
        jwk = Result { try JWK(from: decoder) }
        let c = try? decoder.container(keyedBy: CodingKeys.self)
        kty = (try? c?.decodeIfPresent(String.self, forKey: .kty)) ?? nil
        kid = (try? c?.decodeIfPresent(String.self, forKey: .kid)) ?? nil
        use = (try? c?.decodeIfPresent(String.self, forKey: .use)) ?? nil
        keyOps = (try? c?.decodeIfPresent([String].self, forKey: .keyOps)) ?? nil
    }
}
