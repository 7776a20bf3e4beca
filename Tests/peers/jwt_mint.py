#!/usr/bin/env python3
"""Mints Supabase-style access tokens with PyJWT + cryptography for HubAuthTests.

An independent JOSE implementation: the Swift verifier (jwt-kit + our parser) is checked
against tokens it did not produce. Prints one JSON manifest on stdout:

  now, issuer, secret, user_id, session_id, app_metadata
  jwks: {initial, rotated, new_only}           JWKS documents as strings (exact bytes)
  expected_kids / expected_skipped             what the Swift side must make of `initial`
  cases: [{name, token, expect: accept|reject, reason, verifier}]
      verifier: "default" (initial JWKS + HS256 secret), "nosecret" (initial JWKS, no secret),
                "rotated" (rotated JWKS + secret), "new_only" (new_only JWKS + secret)
  bulk: distinct valid HS256 tokens (cache bound test)

Usage: jwt_mint.py [NOW]   (NOW: Unix seconds the cases are relative to; default: time.time())
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import warnings

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm, get_default_algorithms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

warnings.filterwarnings("ignore")  # PyJWT warns about the short HS512 key of one case
NOW = int(sys.argv[1]) if len(sys.argv) > 1 else int(time.time())
# JWT_MINT_ISSUER: the issuer of a hub under test whose --supabase-url is a local HTTPS server.
ISSUER = os.environ.get("JWT_MINT_ISSUER", "https://abcdefghijklmnop.supabase.co/auth/v1")
SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
USER = "8f0e7c1a-3b2d-4e5f-9a6b-7c8d9e0f1a2b"
SESSION = "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"
APP_METADATA = {"provider": "email", "providers": ["email"], "devicehub": {"orgs": ["acme"]}}
DROP = object()
ALGS = get_default_algorithms()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


# Keys: the ones in use, the ones a rotation brings, and ones the verifier must skip.
ec1 = ec.generate_private_key(ec.SECP256R1())
ec2 = ec.generate_private_key(ec.SECP256R1())
rsa1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
p384 = ec.generate_private_key(ec.SECP384R1())
rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
ed = ed25519.Ed25519PrivateKey.generate()


def jwk(private_key, kid, alg=None, **extra):
    pub = private_key.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        d = ECAlgorithm.to_jwk(pub, as_dict=True)
    elif isinstance(pub, rsa.RSAPublicKey):
        d = RSAAlgorithm.to_jwk(pub, as_dict=True)
    else:
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        d = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    # What Supabase publishes: alg, kid, use, key_ops, ext.
    d.update({"use": "sig", "key_ops": ["verify"], "ext": True})
    if kid is not None:
        d["kid"] = kid
    if alg is not None:
        d["alg"] = alg
    d.update(extra)
    return d


def jwks(*keys):
    return json.dumps({"keys": list(keys)})


initial_keys = [
    jwk(ec1, "ec-1", "ES256"),
    jwk(rsa1, "rsa-1", "RS256"),
    {"kty": "oct", "kid": "hmac-1", "k": b64(SECRET.encode()), "alg": "HS256"},
    jwk(p384, "ec-384", "ES384"),
    jwk(rsa2, "rsa-pss", "PS256"),
    jwk(ec2, "ec-enc", "ES256", use="enc"),
    jwk(ec2, None, "ES256"),
    jwk(rsa_small, "rsa-small", "RS256"),
    jwk(ed, "ed-1", "EdDSA"),
    jwk(ec2, "ec-signonly", "ES256", key_ops=["sign"]),
    jwk(ec2, "ec-wrongalg", "RS256"),
    jwk(ec2, "ec-1", "ES256"),  # a repeated kid: the first one wins
]
expected_skipped = ["hmac-1", "ec-384", "rsa-pss", "ec-enc", None, "rsa-small", "ed-1", "ec-signonly", "ec-wrongalg", "ec-1"]
JWKS = {
    "initial": jwks(*initial_keys),
    "rotated": jwks(jwk(ec1, "ec-1", "ES256"), jwk(ec2, "ec-2", "ES256"), jwk(rsa1, "rsa-1", "RS256"), jwk(rsa2, "rsa-2", "RS256")),
    "new_only": jwks(jwk(ec2, "ec-2", "ES256"), jwk(rsa2, "rsa-2")),  # rsa-2 without alg: RS256 by key type
}

SIGNERS = {"HS256": (SECRET, None), "ES256": (ec1, "ec-1"), "RS256": (rsa1, "rsa-1")}


def claims(**over):
    c = {
        "iss": ISSUER, "aud": "authenticated", "exp": NOW + 3600, "iat": NOW - 10, "sub": USER,
        "email": "ann@example.com", "phone": "", "app_metadata": APP_METADATA,
        "user_metadata": {"name": "Ann", "role": "service_role"}, "role": "authenticated",
        "aal": "aal1", "amr": [{"method": "password", "timestamp": NOW - 10}],
        "session_id": SESSION, "is_anonymous": False,
    }
    for k, v in over.items():
        if v is DROP:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def mint(alg, body, key=None, kid="default", headers=None):
    skey, skid = SIGNERS.get(alg, (None, None))
    h = dict(headers or {})
    k = skid if kid == "default" else kid
    if k is not None:
        h["kid"] = k
    return jwt.encode(body, key if key is not None else skey, algorithm=alg, headers=h)


def sign_raw(alg, header: bytes, payload: bytes, key=None):
    """Signs arbitrary header/payload bytes (PyJWT would insist on JSON)."""
    signing_input = b64(header) + "." + b64(payload)
    algo = ALGS[alg]
    skey = key if key is not None else SIGNERS[alg][0]
    sig = algo.sign(signing_input.encode(), algo.prepare_key(skey))
    return signing_input + "." + b64(sig)


def header_bytes(alg, **extra):
    h = {"alg": alg, "typ": "JWT"}
    if SIGNERS[alg][1]:
        h["kid"] = SIGNERS[alg][1]
    h.update(extra)
    return json.dumps(h, separators=(",", ":")).encode()


cases = []


def case(name, token, expect, reason=None, verifier="default"):
    cases.append({"name": name, "token": token, "expect": expect, "reason": reason, "verifier": verifier})


for alg in ("HS256", "ES256", "RS256"):
    p = alg + "/"
    valid = mint(alg, claims())
    case(p + "valid", valid, "accept")
    case(p + "expired", mint(alg, claims(exp=NOW - 3600)), "reject", "expired")
    case(p + "expired-within-leeway", mint(alg, claims(exp=NOW - 29)), "accept")
    case(p + "expired-at-leeway", mint(alg, claims(exp=NOW - 30)), "reject", "expired")
    case(p + "nbf-ahead", mint(alg, claims(nbf=NOW + 3600)), "reject", "notYetValid")
    case(p + "nbf-within-leeway", mint(alg, claims(nbf=NOW + 30)), "accept")
    case(p + "nbf-past-leeway", mint(alg, claims(nbf=NOW + 31)), "reject", "notYetValid")
    case(p + "wrong-iss", mint(alg, claims(iss="https://otherproject.supabase.co/auth/v1")), "reject", "wrongIssuer")
    case(p + "missing-iss", mint(alg, claims(iss=DROP)), "reject", "wrongIssuer")
    case(p + "wrong-aud", mint(alg, claims(aud="anon")), "reject", "wrongAudience")
    case(p + "aud-array", mint(alg, claims(aud=["other", "authenticated"])), "accept")
    case(p + "aud-array-without", mint(alg, claims(aud=["other", "anon"])), "reject", "wrongAudience")
    case(p + "missing-aud", mint(alg, claims(aud=DROP)), "reject", "wrongAudience")
    case(p + "role-anon", mint(alg, claims(role="anon")), "reject", "wrongRole")
    case(p + "role-service_role", mint(alg, claims(role="service_role")), "reject", "wrongRole")
    case(p + "missing-role", mint(alg, claims(role=DROP)), "reject", "wrongRole")
    case(p + "sub-not-uuid", mint(alg, claims(sub="user-123")), "reject", "badSubject")
    case(p + "missing-sub", mint(alg, claims(sub=DROP)), "reject", "badSubject")
    case(p + "missing-exp", mint(alg, claims(exp=DROP)), "reject", "missingClaim")
    case(p + "exp-string", mint(alg, claims(exp=str(NOW + 3600))), "reject", "malformed")
    case(p + "exp-fraction", mint(alg, claims(exp=NOW + 3600.5)), "accept")
    case(p + "anonymous-user", mint(alg, claims(is_anonymous=True)), "accept")
    case(p + "crit-header", mint(alg, claims(), headers={"crit": ["exp"]}), "reject", "unsupportedCriticalHeader")

    h, body, sig = valid.split(".")
    tampered = b64json(claims(email="mallory@example.com"))
    case(p + "tampered-payload", f"{h}.{tampered}.{sig}", "reject", "badSignature")
    role_swap = b64json(claims(role="service_role"))
    case(p + "tampered-payload-role", f"{h}.{role_swap}.{sig}", "reject", "badSignature")
    raw_sig = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw_sig[0] ^= 0x01
    case(p + "tampered-signature", f"{h}.{body}.{b64(bytes(raw_sig))}", "reject", "badSignature")
    case(p + "tampered-header", f"{b64(header_bytes(alg, typ='JOSE'))}.{body}.{sig}", "reject", "badSignature")
    case(p + "malformed-base64", f"{h}.{body[:10]}*{body[11:]}.{sig}", "reject", "malformed")
    case(p + "padded-signature", f"{h}.{body}.{sig}=", "reject", "malformed")
    case(p + "four-segments", valid + ".x", "reject", "malformed")
    case(p + "leading-space", " " + valid, "reject", "malformed")
    case(p + "malformed-json-header", sign_raw(alg, header_bytes(alg)[:-1], json.dumps(claims()).encode()), "reject", "malformed")
    case(p + "malformed-json-payload", sign_raw(alg, header_bytes(alg), b'{"sub":'), "reject", "malformed")
    case(p + "payload-not-object", sign_raw(alg, header_bytes(alg), b"[1,2]"), "reject", "malformed")
    case(p + "payload-trailing-data", sign_raw(alg, header_bytes(alg), json.dumps(claims()).encode() + b" {}"), "reject", "malformed")
    dup = json.dumps(claims())[:-1] + ',"role":"service_role"}'
    case(p + "duplicate-role", sign_raw(alg, header_bytes(alg), dup.encode()), "reject", "malformed")
    dup_alg = header_bytes(alg)[:-1] + b',"alg":"none"}'
    case(p + "duplicate-alg", sign_raw(alg, dup_alg, json.dumps(claims()).encode()), "reject", "malformed")
    escaped = json.dumps(claims()).replace('"role": "authenticated"', '"role": "authentic\\u0061ted"')
    assert "\\u0061" in escaped
    case(p + "escaped-role", sign_raw(alg, header_bytes(alg), escaped.encode()), "accept")
    escaped_key = json.dumps(claims())[:-1] + ', "\\u0072ole": "service_role"}'
    assert '"\\u0072ole"' in escaped_key
    case(p + "escaped-repeated-role-key", sign_raw(alg, header_bytes(alg), escaped_key.encode()), "reject", "malformed")
    deep = json.dumps(claims(user_metadata=json.loads("[" * 40 + "]" * 40)))
    case(p + "nesting-too-deep", sign_raw(alg, header_bytes(alg), deep.encode()), "reject", "malformed")
    no_alg = json.loads(header_bytes(alg))
    del no_alg["alg"]
    case(p + "missing-alg", sign_raw(alg, json.dumps(no_alg).encode(), json.dumps(claims()).encode()), "reject", "malformed")
    for none in ("none", "None", "NONE"):
        unsigned = b64json({"alg": none, "typ": "JWT", **({"kid": SIGNERS[alg][1]} if SIGNERS[alg][1] else {})})
        case(p + f"alg-{none}", f"{unsigned}.{body}.", "reject", "unsupportedAlgorithm")
    case(p + "session-id-not-uuid", mint(alg, claims(session_id="not-a-uuid")), "accept")
    case(p + "app-metadata-null", mint(alg, claims(app_metadata=None)), "accept")

# Asymmetric-only cases.
for alg, other_kid in (("ES256", "rsa-1"), ("RS256", "ec-1")):
    p = alg + "/"
    new_key = ec2 if alg == "ES256" else rsa2
    new_kid = "ec-2" if alg == "ES256" else "rsa-2"
    rotated = mint(alg, claims(), key=new_key, kid=new_kid)
    case(p + "new-kid", rotated, "reject", "unknownKey")
    case(p + "new-kid-after-rotation", rotated, "accept", verifier="rotated")
    case(p + "old-kid-during-rotation", mint(alg, claims()), "accept", verifier="rotated")
    case(p + "new-kid-after-old-removed", rotated, "accept", verifier="new_only")
    case(p + "old-kid-after-removal", mint(alg, claims()), "reject", "unknownKey", verifier="new_only")
    case(p + "bogus-kid", mint(alg, claims(), kid="nope"), "reject", "unknownKey")
    case(p + "missing-kid", mint(alg, claims(), kid=None), "reject", "unknownKey")
    case(p + "kid-of-other-algorithm", mint(alg, claims(), kid=other_kid), "reject", "algorithmMismatch")
    case(p + "kid-of-skipped-key", mint(alg, claims(), kid="ec-wrongalg"), "reject", "unknownKey")
    case(p + "signed-by-other-key", mint(alg, claims(), key=new_key), "reject", "badSignature")

# ES256 signature in DER form (what a naive signer produces) instead of raw r||s.
h, body, _ = mint("ES256", claims()).split(".")
der = ec1.sign(f"{h}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
case("ES256/der-signature", f"{h}.{body}.{b64(der)}", "reject", "badSignature")
# Non-canonical base64url: the 86-char ES256 signature's last character has 4 unused bits.
h, body, sig = mint("ES256", claims()).split(".")
alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
last = alphabet.index(sig[-1])
case("ES256/non-canonical-signature", f"{h}.{body}.{sig[:-1]}{alphabet[last | 1]}", "reject", "malformed")

# Algorithm confusion: HS256 "signed" with the public key as HMAC secret (PyJWT refuses to do
# this, so by hand). Must fail whether or not a secret is configured.
for kid, key in (("rsa-1", rsa1), ("ec-1", ec1)):
    for fmt in ("pem", "der"):
        pub = key.public_key()
        if fmt == "pem":
            secret = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        else:
            secret = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        signing_input = b64json({"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + b64json(claims())
        forged = signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
        case(f"HS256/confusion-{kid}-{fmt}", forged, "reject", "badSignature")
        case(f"HS256/confusion-{kid}-{fmt}-nosecret", forged, "reject", "unsupportedAlgorithm", verifier="nosecret")
case("HS256/no-secret-configured", mint("HS256", claims()), "reject", "unsupportedAlgorithm", verifier="nosecret")
case("HS256/wrong-secret", mint("HS256", claims(), key="another-secret-that-is-also-32-bytes-long"), "reject", "badSignature")
case("HS256/with-kid", mint("HS256", claims(), kid="ec-1"), "accept")

# Algorithms outside the policy, properly signed.
case("HS512/valid", mint("HS512", claims(), key=SECRET, kid=None), "reject", "unsupportedAlgorithm")
case("PS256/valid", mint("PS256", claims(), key=rsa1, kid="rsa-1"), "reject", "unsupportedAlgorithm")
case("ES384/valid", mint("ES384", claims(), key=p384, kid="ec-384"), "reject", "unsupportedAlgorithm")
case("RS512/valid", mint("RS512", claims(), key=rsa1, kid="rsa-1"), "reject", "unsupportedAlgorithm")

# Structure and size.
case("empty", "", "reject", "malformed")
case("two-segments", "abc.def", "reject", "malformed")
case("dots-only", "..", "reject", "malformed")
big = mint("HS256", claims(app_metadata={"pad": "x" * 7000}))
assert len(big) > 8192, len(big)
case("HS256/oversized", big, "reject", "tooLarge")
near = mint("HS256", claims(app_metadata={"pad": "x" * 5400}))
assert 7000 < len(near) <= 8192, len(near)
case("HS256/near-limit", near, "accept")

bulk = [mint("HS256", claims(jti=f"bulk-{i}")) for i in range(48)]

print(json.dumps({
    "now": NOW, "issuer": ISSUER, "secret": SECRET, "user_id": USER, "session_id": SESSION,
    "app_metadata": APP_METADATA, "jwks": JWKS,
    "expected_kids": ["ec-1", "rsa-1"], "expected_skipped": expected_skipped,
    "cases": cases, "bulk": bulk,
}))
