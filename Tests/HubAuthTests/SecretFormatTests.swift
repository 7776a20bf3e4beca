import Foundation
import Testing
@testable import HubAuth

@Suite struct HashKeyTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("hashkey-\(UUID().uuidString)").path
    }

    @Test func shortAndLongKeysAreRefused() throws {
        #expect(throws: HashKeyError.tooShort(31)) { try HashKey(bytes: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: HashKeyError.tooShort(31)) { try HashKey(text: "  " + String(repeating: "a", count: 31) + "\n") }
        #expect(throws: HashKeyError.tooLong(1025)) { try HashKey(bytes: [UInt8](repeating: 1, count: 1025)) }
        #expect((try? HashKey(bytes: [UInt8](repeating: 1, count: 32))) != nil)
        #expect(try HashKey(text: String(repeating: "a", count: 32) + "\n").bytes == Array(String(repeating: "a", count: 32).utf8))
    }

    @Test func loadOrCreateCreatesAPrivateFileAndReadsItBack() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let created = try HashKey.loadOrCreate(file: path)
        #expect(created.bytes.count == 64)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try HashKey.loadOrCreate(file: path) == created)
        #expect(HashKey.random() != created)
        #expect(!"\(created)".contains(String(decoding: created.bytes.prefix(8), as: UTF8.self)))
    }

    @Test func loadOrCreateRefusesAFileOthersCanRead() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try HashKey.loadOrCreate(file: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: HashKeyError.insecurePermissions(path, mode: 0o644)) { try HashKey.loadOrCreate(file: path) }
    }

    @Test func loadOrCreateRefusesAShortKeyFile() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data("short\n".utf8), attributes: [.posixPermissions: 0o600])
        #expect(throws: HashKeyError.tooShort(5)) { try HashKey.loadOrCreate(file: path) }
    }
}

@Suite struct DeviceSecretAndTokenTests {
    @Test func secretsAre43Base64URLCharactersAndVerifyOnlyThemselves() {
        let secret = DeviceSecret.random()
        #expect(secret.text.count == 43)
        #expect(Base64URLText.decode(secret.text)?.count == 32)
        #expect(secret.storedHash == HubCrypto.sha256(secret.text))
        #expect(DeviceSecret.verify(secret.text, against: secret.storedHash))
        #expect(!DeviceSecret.verify(DeviceSecret.random().text, against: secret.storedHash))
        #expect(!DeviceSecret.verify(String(secret.text.dropLast()), against: secret.storedHash))
        #expect(!DeviceSecret.verify("", against: HubCrypto.sha256("")))  // wrong length never verifies
        #expect(!"\(secret)".contains(secret.text))
    }

    @Test func tokensHaveAHashedStoreKeyAndRefuseJunk() throws {
        let token = DeviceToken.random()
        #expect(token.text.count == 43)
        #expect(token.storeKey == "devtok:" + HubCrypto.hex(HubCrypto.sha256(token.text)))
        #expect(!token.storeKey.contains(token.text))
        #expect(DeviceToken(presented: token.text) == token)
        #expect(DeviceToken(presented: token.text + "A") == nil)
        #expect(DeviceToken(presented: String(token.text.dropLast()) + "+") == nil)
        #expect(DeviceToken(presented: "") == nil)
    }
}

@Suite struct APIKeyTextTests {
    @Test func randomKeysHaveThePlannedFormat() throws {
        let key = APIKeyText.random()
        #expect(key.text.count == 60)
        #expect(key.text.hasPrefix("dhk_" + key.prefix + "_"))
        #expect(key.prefix.count == 12)
        #expect(key.prefix.allSatisfy { "0123456789abcdefghjkmnpqrstvwxyz".contains($0) })
        #expect(key.secret.count == 43)
        #expect(APIKeyText(parsing: key.text) == key)
        #expect(APIKeyText.looksLikeAPIKey(key.text))
        #expect(!APIKeyText.looksLikeAPIKey("eyJhbGciOiJIUzI1NiJ9.e30.x"))
        #expect(key.storedHash == HubCrypto.sha256(key.secret))
        #expect("\(key)" == "dhk_\(key.prefix)_…")
    }

    @Test func parsingGoesByPositionSoUnderscoresInTheSecretWork() throws {
        let secret = "ab_cd_" + String(repeating: "x", count: 37)
        let key = try #require(APIKeyText(parsing: "dhk_0123456789ab_" + secret))
        #expect(key.prefix == "0123456789ab")
        #expect(key.secret == secret)
    }

    @Test func parsingRejectsOtherShapes() {
        let good = "dhk_0123456789ab_" + String(repeating: "x", count: 43)
        #expect(APIKeyText(parsing: good) != nil)
        #expect(APIKeyText(parsing: good + "x") == nil)
        #expect(APIKeyText(parsing: String(good.dropLast())) == nil)
        #expect(APIKeyText(parsing: "dhx_" + good.dropFirst(4)) == nil)
        #expect(APIKeyText(parsing: "dhk_0123456789aB_" + String(repeating: "x", count: 43)) == nil)  // upper case prefix
        #expect(APIKeyText(parsing: "dhk_0123456789au_" + String(repeating: "x", count: 43)) == nil)  // u is not Crockford
        #expect(APIKeyText(parsing: "dhk_0123456789ab-" + String(repeating: "x", count: 43)) == nil)
        #expect(APIKeyText(parsing: "dhk_0123456789ab_" + String(repeating: "x", count: 42) + "=") == nil)
        #expect(APIKeyText(parsing: "") == nil)
    }

    @Test func verifyComparesTheSecretOnly() throws {
        let key = APIKeyText.random()
        let other = try #require(APIKeyText(parsing: "dhk_" + key.prefix + "_" + APIKeyText.random().secret))
        #expect(key.verify(against: key.storedHash))
        #expect(!other.verify(against: key.storedHash))
    }
}
