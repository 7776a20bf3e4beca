import Foundation
import Testing
@testable import HubAuth

/// Bytes of a hex string (test vectors).
func bytes(hex: String) -> [UInt8] {
    var out = [UInt8]()
    var chars = Array(hex.utf8).makeIterator()
    while let hi = chars.next(), let lo = chars.next() {
        out.append(UInt8(String(decoding: [hi, lo], as: UTF8.self), radix: 16)!)
    }
    return out
}

@Suite struct CredentialPrimitivesTests {
    @Test func secureRandomHasTheLengthAndDiffers() {
        #expect(SecureRandom.bytes(0).isEmpty)
        for n in [1, 7, 8, 9, 32, 33] { #expect(SecureRandom.bytes(n).count == n) }
        // Two 32-byte draws colliding has probability 2^-256: equality means a broken generator.
        #expect(SecureRandom.bytes(32) != SecureRandom.bytes(32))
        // Every byte position gets used (a generator filling only whole words would leave the
        // tail of a 9-byte draw at 0 every time; 64 draws all 0 there: 2^-512).
        let tails = (0..<64).map { _ in SecureRandom.bytes(9)[8] }
        #expect(tails.contains { $0 != 0 })
    }

    @Test func constantTimeEqualsIsEquality() {
        let a: [UInt8] = Array(0..<32)
        #expect(ConstantTime.equals(a, a))
        #expect(ConstantTime.equals([], []))
        for i in [0, 15, 31] {
            var b = a
            b[i] ^= 0x01
            #expect(!ConstantTime.equals(a, b), "differs at byte \(i)")
            b[i] ^= 0x81
            #expect(!ConstantTime.equals(a, b), "differs at byte \(i), high bit")
        }
        #expect(!ConstantTime.equals(a, Array(a.dropLast())))
        #expect(!ConstantTime.equals(Array(a.dropLast()), a))
        #expect(!ConstantTime.equals([], [0]))
        // A prefix of 256 more bytes: the length difference is a multiple of 256, which a
        // `UInt8(truncatingIfNeeded: count difference)` shortcut would miss.
        #expect(!ConstantTime.equals([1], [1] + [UInt8](repeating: 0, count: 256)))
    }

    @Test func sha256MatchesFIPSVectors() {
        #expect(HubCrypto.hex(HubCrypto.sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(HubCrypto.hex(HubCrypto.sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(HubCrypto.hex(HubCrypto.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func hmacSHA256MatchesRFC4231() {
        // Test case 1.
        #expect(HubCrypto.hex(HubCrypto.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 2: a key shorter than the block.
        #expect(HubCrypto.hex(HubCrypto.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Test case 6: a key longer than the block (hashed first).
        #expect(HubCrypto.hex(HubCrypto.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 131),
                                                   Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        // An empty message (nil base address) still hashes.
        #expect(HubCrypto.hmacSHA256(key: [1, 2, 3], []).count == 32)
        #expect(HubCrypto.hmacSHA256(key: [1, 2, 3], []) != HubCrypto.hmacSHA256(key: [1, 2, 4], []))
    }

    @Test func base64URLMatchesRFC4648() {
        let vectors: [(String, String)] = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
                                           ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in vectors {
            #expect(Base64URLText.encode(Array(plain.utf8)) == encoded)
            #expect(Base64URLText.decode(encoded) == Array(plain.utf8))
        }
        // The URL-safe characters, where standard base64 has + and /.
        #expect(Base64URLText.encode([0xfb, 0xff, 0xbf]) == "-_-_")
        #expect(Base64URLText.decode("-_-_") == [0xfb, 0xff, 0xbf])
        #expect(Base64URLText.encode([UInt8](repeating: 0xff, count: 32)).count == 43)
        for _ in 0..<50 {
            let random = SecureRandom.bytes(Int.random(in: 0...40))
            #expect(Base64URLText.decode(Base64URLText.encode(random)) == random)
        }
    }

    @Test func base64URLDecodeRejectsNonCanonicalText() {
        #expect(Base64URLText.decode("Zg==") == nil)  // padding
        #expect(Base64URLText.decode("Zm+v") == nil)  // standard alphabet
        #expect(Base64URLText.decode("Zm9 ") == nil)
        #expect(Base64URLText.decode("Z") == nil)     // impossible length
        #expect(Base64URLText.decode("Zh") == nil)    // unused bits set ("Zg" is the canonical form)
    }
}
