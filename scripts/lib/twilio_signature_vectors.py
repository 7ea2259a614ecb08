"""Test vectors for X-Twilio-Signature, computed by Twilio's own helper library (PyPI
`twilio`, `RequestValidator.compute_signature`), the oracle for our implementation
(shared/src/adapters/twilio_webhook.rs, whose test reads the vectors).

    python twilio_signature_vectors.py write   # writes shared/tests/fixtures/twilio_signatures.json
    python twilio_signature_vectors.py check   # fails if the committed vectors differ from the library's

scripts/test-web runs `check`, so the committed vectors cannot drift from Twilio's library.
"""

import json
import sys
from pathlib import Path

from twilio.request_validator import RequestValidator

FIXTURE = Path(__file__).resolve().parents[2] / "shared/tests/fixtures/twilio_signatures.json"
TOKEN = "12345abcdef-status-callback-token"

# What Twilio posts to a status callback, and shapes that test the ordering and encoding.
CASES = [
    ("https://api.example.com/prod/api/sms-status", {}),
    (
        "https://api.example.com/prod/api/sms-status",
        {
            "AccountSid": "AC0123456789abcdef0123456789abcdef",
            "ApiVersion": "2010-04-01",
            "From": "+15005550006",
            "MessageSid": "SM0123456789abcdef0123456789abcdef",
            "MessageStatus": "delivered",
            "SmsSid": "SM0123456789abcdef0123456789abcdef",
            "SmsStatus": "delivered",
            "To": "+14155550123",
        },
    ),
    (
        "https://api.example.com/prod/api/sms-status",
        {"MessageSid": "SMaaaa", "MessageStatus": "undelivered", "ErrorCode": "30003"},
    ),
    ("https://api.example.com/prod/api/sms-status?region=br", {"b": "2", "a": "1", "B": "3", "a1": ""}),
    ("https://api.example.com/prod/api/sms-status", {"Body": "Olá, código é 123 & ção"}),
    ("http://127.0.0.1:3001/api/sms-status", {"CallSid": "CA0123", "CallStatus": "completed"}),
]


def vectors():
    validator = RequestValidator(TOKEN)
    out = []
    for url, params in CASES:
        out.append({"url": url, "params": params, "signature": validator.compute_signature(url, params)})
    return {"authToken": TOKEN, "library": "twilio (PyPI) RequestValidator.compute_signature", "vectors": out}


def main(mode):
    computed = vectors()
    if mode == "write":
        FIXTURE.write_text(json.dumps(computed, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {len(computed['vectors'])} vectors to {FIXTURE}")
    elif json.loads(FIXTURE.read_text()) != computed:
        raise SystemExit(f"{FIXTURE} differs from what Twilio's library computes: run `write` and review")
    else:
        print(f"{len(computed['vectors'])} X-Twilio-Signature vectors match Twilio's helper library")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "check")
