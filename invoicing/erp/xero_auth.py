"""Xero's OAuth 2.0 with PKCE, and how its answers are read.

The user goes to the authorize URL with an S256 challenge of a random verifier; the
code that comes back is worth tokens only with that verifier. The token endpoint
authenticates an app with a secret by HTTP Basic; a PKCE-only app has no secret and
sends its client id alone. Access tokens live 30 minutes; every refresh answers a new
refresh token (Xero rotates them: the old one lapses after a short grace period), so
the credentials change and must be kept.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from invoicing.erp.base import Authorization, Credentials, SyncError
from invoicing.tax.base import loads_exact

VERIFIER_BYTES = 48  # 64 characters of [A-Za-z0-9_-], inside PKCE's 43..128
DEFAULT_LIFETIME = 1800  # seconds, when the answer omits expires_in


def challenge(verifier: str) -> str:
    """PKCE's S256 code challenge: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def authorization(
    authorize_url: str, client_id: str, redirect_uri: str, scope: str, state: str
) -> Authorization:
    """Where to send the user, with a fresh verifier kept for the callback."""
    verifier = secrets.token_urlsafe(VERIFIER_BYTES)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    return Authorization(f"{authorize_url}?{query}", verifier)


class TokenEndpoint:
    """Xero's token endpoint: codes and refresh tokens traded for new tokens, written
    into the credentials (and `changed` set, so that the engine keeps them)."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        client_id: str,
        client_secret: str | None,
        now: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._url = url
        self._client_id = client_id
        self._auth = httpx.BasicAuth(client_id, client_secret) if client_secret else None
        self._now = now

    def exchange(
        self, credentials: Credentials, code: str, verifier: str | None, redirect_uri: str
    ) -> None:
        if verifier is None and self._auth is None:
            raise SyncError("no PKCE code verifier for an app without a client secret")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier is not None:
            form["code_verifier"] = verifier
        self._trade(credentials, form)

    def refresh(self, credentials: Credentials) -> None:
        if not credentials.refresh_token:
            raise SyncError("the Xero access token expired and there is no refresh token")
        form = {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token}
        self._trade(credentials, form)

    def _trade(self, credentials: Credentials, form: dict[str, str]) -> None:
        form["client_id"] = self._client_id
        try:
            response = self._client.post(
                self._url,
                data=form,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise SyncError("Xero's token endpoint did not answer in time") from None
        except httpx.HTTPError as error:
            raise SyncError(f"Xero's token endpoint: {type(error).__name__}: {error}") from None
        if not response.is_success:
            raise SyncError(
                f"Xero refused the token request: {describe(response)}", response.status_code
            )
        data = answer(response)
        access = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(access, str) or not access:
            raise SyncError("Xero's token answer has no access_token", response.status_code)
        credentials.access_token = access
        refresh = data.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            credentials.refresh_token = refresh
        lifetime = data.get("expires_in")
        seconds = lifetime if isinstance(lifetime, int) and lifetime > 0 else DEFAULT_LIFETIME
        credentials.expires_at = self._now() + timedelta(seconds=seconds)
        credentials.changed = True


def answer(response: httpx.Response) -> Any:
    """A Xero answer's JSON, every non-integer number an exact Decimal."""
    try:
        return loads_exact(response.content)
    except ValueError:
        status = response.status_code
        raise SyncError(
            f"Xero answered something that is not JSON (HTTP {status})", status
        ) from None


def describe(response: httpx.Response) -> str:
    """Xero's reason for a refusal: its validation messages, its rate limit, else its text."""
    status = response.status_code
    if status == 429:
        problem = response.headers.get("X-Rate-Limit-Problem", "rate")
        wait = response.headers.get("Retry-After")
        after = f"; retry after {wait} s" if wait else ""
        return f"HTTP 429: Xero's {problem} limit was reached{after}"
    try:
        data = loads_exact(response.content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        messages = [
            str(error["Message"])
            for element in data.get("Elements") or ()
            if isinstance(element, dict)
            for error in element.get("ValidationErrors") or ()
            if isinstance(error, dict) and error.get("Message")
        ]
        # Validation messages, else the Accounting API's Message, the identity service's
        # problem Detail, or an OAuth error.
        keys = ("Message", "Detail", "error_description", "error", "Title")
        reason = "; ".join(messages) or next((str(data[k]) for k in keys if data.get(k)), "")
        if reason:
            return f"HTTP {status}: {reason}"
    text = response.text.strip().replace("\n", " ")
    return f"HTTP {status}" + (f": {text[:300]}" if text else "")
