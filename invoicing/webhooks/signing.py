"""The signature a receiver checks: lowercase hex of HMAC-SHA256(secret, raw body)."""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (constant time)."""
    return hmac.compare_digest(signature(secret, body), header.strip().lower())
