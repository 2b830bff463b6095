"""OAuth 1.0a request signing (RFC 5849) with HMAC-SHA256, as NetSuite's token-based
authentication uses it: consumer key/secret of the integration record plus a token
id/secret of one user and role, a timestamp and a nonce on every request.

    signature base string = METHOD & enc(base URL) & enc(normalized parameters)
    key                   = enc(consumer secret) & enc(token secret)
    oauth_signature       = base64(HMAC-SHA256(key, base string))

The base URL is scheme://host[:port]/path with scheme and host lowercased and a default
port (80 for http, 443 for https) dropped, without the query. The normalized parameters
are the oauth_* parameters (not `oauth_signature`, not `realm`) and the query's
parameters, each name and value percent-encoded, sorted by name then value, joined as
name=value with `&`. Everything here is pure: the caller supplies time and nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

SIGNATURE_METHOD = "HMAC-SHA256"
VERSION = "1.0"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def encode(value: str) -> str:
    """RFC 5849 §3.6: every byte but ALPHA, DIGIT, '-', '.', '_', '~' as %XX (UTF-8)."""
    return quote(value, safe="-._~")


def base_url(url: str) -> str:
    """RFC 5849 §3.4.1.2: lowercase scheme and host, no default port, no query."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def normalized_parameters(params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1.3.2: encode each pair, sort, join."""
    pairs = sorted((encode(name), encode(value)) for name, value in params)
    return "&".join(f"{name}={value}" for name, value in pairs)


def signature_base_string(method: str, url: str, oauth_params: Iterable[tuple[str, str]]) -> str:
    """The string that is signed: method, base URL and every parameter but the
    signature and the realm (the query's parameters come from `url`)."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    params = [
        (name, value)
        for name, value in [*oauth_params, *query]
        if name not in ("oauth_signature", "realm")
    ]
    return "&".join((method.upper(), encode(base_url(url)), encode(normalized_parameters(params))))


def sign(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """base64 of HMAC-SHA256 keyed by the two encoded secrets joined with '&'."""
    key = f"{encode(consumer_secret)}&{encode(token_secret)}".encode()
    digest = hmac.new(key, base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Token:
    """The four secrets of token-based authentication, and the account (realm)."""

    realm: str
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str


def authorization(token: Token, method: str, url: str, *, timestamp: int, nonce: str) -> str:
    """The `Authorization: OAuth …` header value for one request."""
    oauth = [
        ("oauth_consumer_key", token.consumer_key),
        ("oauth_token", token.token_id),
        ("oauth_signature_method", SIGNATURE_METHOD),
        ("oauth_timestamp", str(timestamp)),
        ("oauth_nonce", nonce),
        ("oauth_version", VERSION),
    ]
    signed = sign(
        signature_base_string(method, url, oauth), token.consumer_secret, token.token_secret
    )
    fields = [("realm", token.realm), *oauth, ("oauth_signature", signed)]
    return "OAuth " + ",".join(f'{name}="{encode(value)}"' for name, value in fields)
