"""Classified errors with stable codes; the API maps each class to one HTTP status.

- invalid input  -> ValidationFailed (422): never retried, explained to the caller
- not found      -> NotFound (404)
- illegal state  -> Conflict (409): duplicate code, forbidden transition
- transient I/O  -> retried where it happens (tenacity), never shown as a 4xx
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
