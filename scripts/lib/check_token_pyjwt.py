"""A backend in Python checks a session token: PyJWT (with `cryptography`), a library no
one here wrote, against the served JWK Set alone. scripts/test-web runs it against a local
run (scripts/dev) at the URL given: a real send, the code from /_dev/outbox, a real verify.

    python check_token_pyjwt.py http://127.0.0.1:PORT
"""

import json
import sys
import urllib.request

import jwt

ISSUER = "otp-service"
AUDIENCE = "otp-service-clients"
PHONE = "+14155550177"


def post(base, path, body):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Origin": "http://localhost:5173"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main(base):
    post(base, "/api/send-otp", {"phone": PHONE})
    with urllib.request.urlopen(base + "/_dev/outbox", timeout=10) as response:
        sms = next(m for m in json.load(response) if m["to"] == PHONE)
    code = next(run for run in "".join(c if c.isdigit() else " " for c in sms["body"]).split() if len(run) >= 4)
    token = post(base, "/api/verify-otp", {"phone": PHONE, "code": code})["token"]

    # What the README shows a backend doing: the key by the token's kid, from the JWK Set.
    keys = jwt.PyJWKClient(base + "/.well-known/jwks.json")
    key = keys.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == PHONE and claims["phone_number"] == PHONE, claims
    assert claims["phone_number_verified"] is True and claims["amr"] == ["sms"], claims

    # And it refuses what it must: another audience, a token with one bit of its signature flipped.
    for bad_audience in ("another-backend",):
        try:
            jwt.decode(token, key, algorithms=["ES256"], audience=bad_audience, issuer=ISSUER)
            raise SystemExit("PyJWT accepted a token for another audience")
        except jwt.InvalidAudienceError:
            pass
    head, _, signature = token.rpartition(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    try:
        jwt.decode(f"{head}.{flipped}", key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER)
        raise SystemExit("PyJWT accepted a forged signature")
    except jwt.InvalidSignatureError:
        pass
    print(f"PyJWT {jwt.__version__}: the token checks against the JWK Set (kid {key.key_id}); forgeries refused")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"))
