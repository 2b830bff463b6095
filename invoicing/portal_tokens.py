"""Portal tokens: a signed, expiring grant to read one customer's account.

A token is `mlp1.<payload>.<signature>`: the payload (base64url JSON) names the tenant,
the customer's ledger id, the expiry (Unix seconds) and a random nonce; the signature is
HMAC-SHA256 over the version and the payload under a key of one purpose (an access
token's key never verifies a portal session cookie, nor the other way round). Nothing
is stored: a token is valid until it expires, and rotating METERLINE_SECRET_KEY
revokes every token at once (docs/portal.md says what that costs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from core.errors import Unauthenticated

VERSION = "mlp1"
PREFIX = VERSION + "."
# Purposes of the signing keys (SecretBox.derive_key).
ACCESS = "portal-access"
SESSION = "portal-session"


@dataclass(frozen=True)
class PortalGrant:
    """What a valid token says: this customer of this tenant, until `expires_at`."""

    tenant_id: str
    customer_id: str  # the ledger row id: a deleted and re-created external id is not it
    expires_at: datetime
    nonce: str


def is_portal_token(text: str) -> bool:
    """Whether `text` has the shape of a portal token (not whether it is valid)."""
    return text.startswith(PREFIX)


def issue(
    key: bytes, tenant_id: str, customer_id: str, now: datetime, lifetime: timedelta
) -> tuple[str, PortalGrant]:
    """A new token for the customer, valid from `now` for `lifetime` (whole seconds)."""
    expires = datetime.fromtimestamp(int((now + lifetime).timestamp()), UTC)
    grant = PortalGrant(tenant_id, customer_id, expires, secrets.token_urlsafe(12))
    return sign(key, grant), grant


def sign(key: bytes, grant: PortalGrant) -> str:
    """The token of `grant` under `key` (a session cookie re-signs an access grant)."""
    payload = _b64(
        orjson.dumps(
            {
                "t": grant.tenant_id,
                "c": grant.customer_id,
                "exp": int(grant.expires_at.timestamp()),
                "n": grant.nonce,
            }
        )
    )
    return f"{PREFIX}{payload}.{_b64(_mac(key, payload))}"


def verify(key: bytes, token: str, now: datetime) -> PortalGrant:
    """The grant of a token signed under `key`, or Unauthenticated: `invalid_token` for a
    malformed, forged or altered one, `token_expired` for one past its expiry."""
    version, _, rest = token.strip().partition(".")
    payload, _, signature = rest.partition(".")
    if version != VERSION or not payload or not signature:
        raise _invalid("the portal token is malformed")
    try:
        given = _unb64(signature)
    except ValueError:
        raise _invalid("the portal token is malformed") from None
    # Constant-time: the time to refuse says nothing about how much of a forgery matched.
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise _invalid("the portal token's signature does not match")
    try:
        body = orjson.loads(_unb64(payload))
        grant = PortalGrant(
            tenant_id=str(body["t"]),
            customer_id=str(body["c"]),
            expires_at=datetime.fromtimestamp(int(body["exp"]), UTC),
            nonce=str(body["n"]),
        )
    except (ValueError, KeyError, TypeError, OverflowError, orjson.JSONDecodeError):
        raise _invalid("the portal token's content is not readable") from None
    if now >= grant.expires_at:
        stamp = grant.expires_at.isoformat().replace("+00:00", "Z")
        raise Unauthenticated(
            f"the portal token expired at {stamp}; ask for a new portal link",
            code="token_expired",
        )
    return grant


def _invalid(message: str) -> Unauthenticated:
    return Unauthenticated(message, code="invalid_token")


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, f"{VERSION}.{payload}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
