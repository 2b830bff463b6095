"""Classified domain errors, each with a stable string `code`.

Four classes say what a caller can do about an error:

- invalid input  -> `InvalidInput`: never retried; the message tells the caller what to fix
- not found      -> `NotFound`
- illegal state  -> `Conflict`: a duplicate code, a forbidden transition
- transient I/O  -> `Transient`: a retry may succeed (a provider or store that is down)
- upstream       -> `UpstreamFailed`: a dependency refused, and a retry will not help

Two more classify who is asking: `Unauthenticated` and `PermissionDenied`. Transport
statuses (HTTP) are mapped in `api/` only; nothing here knows about them.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every classified error: a message for people and a code for programs."""

    code = "bad_request"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class InvalidInput(DomainError):
    """The input can never succeed as sent."""

    code = "validation_error"


class NotFound(DomainError):
    """The thing named does not exist (for this tenant)."""

    code = "not_found"


class Conflict(DomainError):
    """The request is valid but the current state forbids it."""

    code = "conflict"


class Transient(DomainError):
    """A dependency failed in a way that a later retry may not."""

    code = "unavailable"
    retryable = True


class UpstreamFailed(DomainError):
    """A dependency (a tax provider, an ERP) refused or failed, and a retry will not help."""

    code = "upstream_error"


class Unauthenticated(DomainError):
    """No valid credentials were presented."""

    code = "unauthorized"


class PermissionDenied(DomainError):
    """Valid credentials that may not act on this tenant."""

    code = "forbidden"


# The names the ledger code has always used.
ValidationFailed = InvalidInput
