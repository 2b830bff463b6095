"""A local HTTP server that answers as Xero's identity service and Accounting API
document, and checks what it gets.

Identity: `GET /identity/connect/authorize` checks the consent request (response_type
code, the app's client id and redirect URI, offline_access among the scopes, a state,
an S256 challenge) and redirects to the redirect URI with a one-time code, remembering
the challenge; `POST /connect/token` trades the code only for the verifier whose
BASE64URL(SHA256) is that challenge, authenticates the client (HTTP Basic for an app
with a secret, the client id alone for a PKCE app), and rotates the refresh token on
every refresh (the old one works for a 30-minute grace period, as Xero documents).
Access tokens expire 30 minutes after issue on the test's clock. `GET /connections`
lists the organisations the user connected.

Accounting (`/api.xro/2.0`): every call needs a live bearer token (401 with Xero's
problem body otherwise), a `Xero-tenant-id` of a connected organisation (403) and
`Accept: application/json`. Contacts are found with `where=Field=="value"` and created
with PUT (names unique). Invoices and credit notes are created with PUT and updated
with POST on their id; numbers must be JSON numbers (Quantity to 4 decimals, UnitAmount
to `unitdp`), account codes must be in the chart, document numbers unique, and the
totals are computed exactly. A write's `Idempotency-Key` replays the first answer for
a repeat of the same request. Refusals are Xero's 400 ValidationException bodies.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from tests.helpers.loopback import IdempotencyKeys, LoopbackServer, Request, Response

CLIENT_ID = "8F1C5D0A2B3E4F6A9C7D1E2F3A4B5C6D"
CLIENT_SECRET = "xero-secret-Qm9vBq2r7T1n"
REDIRECT_URI = "https://billing.example.com/api/v1/erp/oauth/callback"
TENANT = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58"
OTHER_TENANT = "0a1b2c3d-0000-4a92-ba7b-538af6289c59"
PRACTICE = "9c9c9c9c-1111-4a92-ba7b-538af6289c60"
AUTHORIZE = "/identity/connect/authorize"
TOKEN = "/connect/token"
CONNECTIONS = "/connections"
API = "/api.xro/2.0"
ACCOUNTS = frozenset({"200", "260"})  # the demo chart's sales and other-revenue codes
TOKEN_LIFETIME = timedelta(minutes=30)
REFRESH_GRACE = timedelta(minutes=30)
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
WHERE = re.compile(r'^(\w+)=="((?:[^"\\]|\\.)*)"$')
EXPIRED_CHALLENGE = 'Bearer error="invalid_token", error_description="The token expired"'
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KINDS = {  # collection -> (id field, number field, type)
    "Invoices": ("InvoiceID", "InvoiceNumber", "ACCREC"),
    "CreditNotes": ("CreditNoteID", "CreditNoteNumber", "ACCRECCREDIT"),
}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _oauth_error(error: str, status: int = 400) -> Response:
    return Response(status, {"error": error})


def _problem(status: int, title: str, detail: str) -> Response:
    return Response(status, {"Type": None, "Title": title, "Status": status, "Detail": detail})


def invalid(record: dict[str, Any], *messages: str) -> Response:
    """Xero's answer to a write it refuses: a ValidationException naming each problem."""
    return Response(
        400,
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [{**record, "ValidationErrors": [{"Message": m} for m in messages]}],
        },
    )


def _ok(collection: str, records: list[dict[str, Any]]) -> Response:
    body = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "Meterline",
        collection: records,
    }
    return Response(200, body)


@dataclass
class Grant:
    tenants: list[str]
    expires_at: datetime


@dataclass
class Refresh:
    tenants: list[str]
    rotated_at: datetime | None = None


@dataclass
class Pending:  # an authorization code waiting for its exchange
    challenge: str
    redirect_uri: str
    tenants: list[str]


@dataclass
class Org:
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in KINDS}
    )


class FakeXero:
    def __init__(self, now: Callable[[], datetime], *, secret: str | None = None) -> None:
        self.now = now
        self.secret = secret  # None: a PKCE app with no client secret
        self.server = LoopbackServer(self.app)
        self.connected = [TENANT, OTHER_TENANT]
        self.orgs = {TENANT: Org(), OTHER_TENANT: Org()}
        self.pending: dict[str, Pending] = {}
        self.grants: dict[str, Grant] = {}
        self.refreshes: dict[str, Refresh] = {}
        self.keys = IdempotencyKeys()
        self.applied: list[tuple[str, str]] = []  # the writes that took effect (method, path)
        self.refuse_tokens = False  # every access token refused (revoked behind our back)
        self._lost: dict[tuple[str, str], Response] = {}
        self._serial = itertools.count(1)
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return self.server.url

    def org(self, tenant: str = TENANT) -> Org:
        return self.orgs[tenant]

    def issue(self, tenants: list[str] | None = None) -> tuple[str, str]:
        """An access and refresh token pair, as if the user had already connected."""
        with self._lock:
            return self._issue(tenants or [TENANT])

    def writes(self, path_prefix: str = API) -> list[Request]:
        return [r for r in self.server.requests
                if r.method in ("PUT", "POST") and r.path.startswith(path_prefix)]  # fmt: skip

    def lose_answer_to(self, method: str, path: str, answer: Response) -> None:
        """Handle the next `method path` request, then send `answer` instead of Xero's."""
        with self._lock:
            self._lost[(method, path)] = answer

    def _issue(self, tenants: list[str]) -> tuple[str, str]:
        serial = next(self._serial)
        access, refresh = f"xat-{serial:04d}-{uuid.uuid4().hex}", f"xrt-{serial:04d}"
        self.grants[access] = Grant(tenants, self.now() + TOKEN_LIFETIME)
        self.refreshes[refresh] = Refresh(tenants)
        return access, refresh

    def app(self, request: Request) -> Response:
        with self._lock:
            answer = self._route(request)
            return self._lost.pop((request.method, request.path), answer)

    def _route(self, request: Request) -> Response:
        with self._lock:
            if request.path == AUTHORIZE and request.method == "GET":
                return self._authorize(request)
            if request.path == TOKEN and request.method == "POST":
                return self._token(request)
            grant = self.grants.get(
                request.headers.get("authorization", "").removeprefix("Bearer ")
            )
            if (
                grant is None
                or self.refuse_tokens
                or not request.headers.get("authorization", "").startswith("Bearer ")
            ):
                return _problem(401, "Unauthorized", "AuthenticationUnsuccessful")
            if grant.expires_at <= self.now():
                expired = _problem(401, "Unauthorized", "TokenExpired: token expired")
                return Response(401, expired.body, {"WWW-Authenticate": EXPIRED_CHALLENGE})
            if request.path == CONNECTIONS and request.method == "GET":
                return Response(200, [self._connection(t) for t in grant.tenants])
            if not request.path.startswith(API + "/"):
                return _problem(404, "Not Found", f"no route {request.path}")
            tenant = request.headers.get("xero-tenant-id")
            if tenant not in grant.tenants:
                return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
            if request.headers.get("accept") != "application/json":
                return _problem(406, "Not Acceptable", "this fake answers JSON only")
            return self._api(request, self.orgs[tenant])

    # -- identity --------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        q = {name: values[0] for name, values in request.query.items()}
        problems = [
            name for name, ok in (
                ("response_type", q.get("response_type") == "code"),
                ("client_id", q.get("client_id") == CLIENT_ID),
                ("redirect_uri", q.get("redirect_uri") == REDIRECT_URI),
                ("scope", "offline_access" in q.get("scope", "").split()),
                ("state", bool(q.get("state"))),
                ("code_challenge", re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", ""))),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
            ) if not ok
        ]  # fmt: skip
        if problems:
            return Response(400, f"invalid authorization request: {', '.join(problems)}".encode())
        code = f"code-{uuid.uuid4().hex}"
        self.pending[code] = Pending(q["code_challenge"], q["redirect_uri"], list(self.connected))
        target = f"{REDIRECT_URI}?{urlencode({'code': code, 'state': q['state']})}"
        return Response(302, None, {"Location": target})

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        basic = request.headers.get("authorization", "")
        if self.secret is None:
            return form.get("client_id") == CLIENT_ID and not basic
        expected = base64.b64encode(f"{CLIENT_ID}:{self.secret}".encode()).decode()
        return basic == f"Basic {expected}"

    def _token(self, request: Request) -> Response:
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request")
        form = {name: values[0] for name, values in request.form().items()}
        if not self._client_ok(request, form):
            return _oauth_error("invalid_client")
        if form.get("grant_type") == "authorization_code":
            pending = self.pending.pop(form.get("code", ""), None)  # a code works once
            verifier = form.get("code_verifier", "")
            if pending is None or form.get("redirect_uri") != pending.redirect_uri:
                return _oauth_error("invalid_grant")
            if not VERIFIER.fullmatch(verifier) or s256(verifier) != pending.challenge:
                return _oauth_error("invalid_grant")
            return self._tokens(pending.tenants)
        if form.get("grant_type") == "refresh_token":
            found = self.refreshes.get(form.get("refresh_token", ""))
            now = self.now()
            if found is None or (found.rotated_at and found.rotated_at + REFRESH_GRACE <= now):
                return _oauth_error("invalid_grant")
            found.rotated_at = found.rotated_at or now
            return self._tokens(found.tenants)
        return _oauth_error("unsupported_grant_type")

    def _tokens(self, tenants: list[str]) -> Response:
        access, refresh = self._issue(tenants)
        return Response(200, {"id_token": "eyJhbGciOi.fake.id", "access_token": access,
                              "expires_in": int(TOKEN_LIFETIME.total_seconds()),
                              "token_type": "Bearer", "refresh_token": refresh,
                              "scope": "offline_access accounting.invoices"})  # fmt: skip

    def _connection(self, tenant: str) -> dict[str, Any]:
        kind = "PRACTICE" if tenant == PRACTICE else "ORGANISATION"
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, tenant)), "tenantId": tenant,
                "tenantType": kind, "tenantName": f"Org {tenant[:4]}",
                "createdDateUtc": "2026-11-02T09:00:00.0000000"}  # fmt: skip

    # -- accounting ------------------------------------------------------------------

    def _api(self, request: Request, org: Org) -> Response:
        parts = request.path.removeprefix(API + "/").split("/")
        if request.method == "GET":
            return self._get(parts, request, org)
        if request.headers.get("content-type") != "application/json":
            return _problem(415, "Unsupported Media Type", "send application/json")
        body = request.json()

        def handle() -> Response:
            return self._write(request.method, parts, request, body, org)

        key = request.headers.get("idempotency-key")
        if key is None:
            return handle()
        if len(key) > 128:
            return invalid({}, "Idempotency-Key is longer than 128 characters")
        mismatch = invalid({}, "The Idempotency-Key was used with a different request")
        return self.keys.once(key, (request.method, request.path, body), handle, mismatch)

    def _get(self, parts: list[str], request: Request, org: Org) -> Response:
        if parts == ["Organisation"]:
            return _ok("Organisations", [{"Name": "Demo Company (NZ)", "BaseCurrency": "NZD",
                                          "OrganisationID": TENANT}])  # fmt: skip
        wheres = request.query.get("where")
        where = wheres[0] if wheres else None
        match = WHERE.fullmatch(where) if where else None
        if where is not None and match is None:
            return invalid({}, f"unsupported where filter {where!r}")
        pool = org.contacts if parts == ["Contacts"] else org.records.get(parts[0])
        if pool is None or len(parts) != 1:
            return _problem(404, "Not Found", f"no route {request.path}")
        found = list(pool.values())
        if match is not None:
            wanted = re.sub(r"\\(.)", r"\1", match.group(2))
            found = [r for r in found if str(r.get(match.group(1), "")) == wanted]
        return _ok(parts[0], found)

    def _write(
        self, method: str, parts: list[str], request: Request, body: Any, org: Org
    ) -> Response:
        collection = parts[0]
        records = body.get(collection) if isinstance(body, dict) else None
        if not isinstance(records, list) or len(records) != 1 or not isinstance(records[0], dict):
            return invalid({}, f"the body must be {{{collection!r}: [one record]}}")
        record = records[0]
        if parts == ["Contacts"] and method == "PUT":
            return self._new_contact(record, org)
        if collection not in KINDS or len(parts) > 2:
            return _problem(404, "Not Found", f"no route {request.path}")
        id_field, number_field, type_ = KINDS[collection]
        if method == "PUT" and len(parts) == 1:
            record_id = str(uuid.uuid4())
        elif method == "POST" and len(parts) == 2:
            record_id = parts[1]
            if record_id not in org.records[collection]:
                return _problem(404, "Not Found", f"no {id_field} {record_id}")
        else:
            return _problem(405, "Method Not Allowed", f"{method} {request.path}")
        unitdp = int((request.query.get("unitdp") or ["2"])[0])
        problems = self._check(record, type_, number_field, record_id, org.records[collection],
                               org, unitdp)  # fmt: skip
        if problems:
            return invalid(record, *problems)
        stored = {**record, id_field: record_id, **_totals(record)}
        org.records[collection][record_id] = stored
        self.applied.append((method, request.path))
        return _ok(collection, [stored])

    def _new_contact(self, record: dict[str, Any], org: Org) -> Response:
        name = str(record.get("Name") or "")
        if not name:
            return invalid(record, "The contact name must be specified.")
        if any(c["Name"].lower() == name.lower() for c in org.contacts.values()):
            return invalid(record, f"The contact name {name} is already assigned to another "
                                   "contact. The contact name must be unique across all active "
                                   "contacts.")  # fmt: skip
        stored = {**record, "ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE"}
        org.contacts[stored["ContactID"]] = stored
        self.applied.append(("PUT", API + "/Contacts"))
        return _ok("Contacts", [stored])

    def _check(self, record: dict[str, Any], type_: str, number_field: str, record_id: str,
               pool: dict[str, dict[str, Any]], org: Org, unitdp: int) -> list[str]:  # fmt: skip
        problems = []
        if record.get("Type") != type_:
            problems.append(f"Type must be {type_}")
        contact = record.get("Contact") or {}
        if contact.get("ContactID") not in org.contacts:
            problems.append("A Contact must be specified for this type of transaction")
        for name in ("Date", "DueDate") if type_ == "ACCREC" else ("Date",):
            if not DATE.fullmatch(str(record.get(name) or "")):
                problems.append(f"{name} must be a date YYYY-MM-DD")
        number = record.get(number_field)
        if any(r.get(number_field) == number and rid != record_id for rid, r in pool.items()):
            problems.append(f"{number_field.replace('Number', '')} # must be unique.")
        lines = record.get("LineItems")
        if not isinstance(lines, list) or not lines:
            problems.append("At least one line item is required")
        for line in lines or ():
            quantity, unit = line.get("Quantity"), line.get("UnitAmount")
            if not _number(quantity, 4) or not _number(unit, unitdp):
                problems.append("Quantity and UnitAmount must be numbers within their decimals")
            if line.get("AccountCode") not in ACCOUNTS:
                problems.append(f"Account code '{line.get('AccountCode')}' is not a valid code "
                                "for this document.")  # fmt: skip
            if "TaxAmount" in line and not _number(line["TaxAmount"], 2):
                problems.append("TaxAmount must be a number")
        return problems


def _number(value: Any, places: int) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return False
    exponent = Decimal(value).as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= places


def _totals(record: dict[str, Any]) -> dict[str, Decimal]:
    """Xero's arithmetic: LineAmount = Quantity x UnitAmount to the cent, then the sums."""
    cent = Decimal("0.01")
    amounts = [(Decimal(ln["Quantity"]) * Decimal(ln["UnitAmount"])).quantize(cent, ROUND_HALF_UP)
               for ln in record["LineItems"]]  # fmt: skip
    tax = sum((Decimal(ln.get("TaxAmount", 0)) for ln in record["LineItems"]), Decimal(0))
    subtotal = sum(amounts, Decimal(0))
    inclusive = record.get("LineAmountTypes") == "Inclusive"
    return {"SubTotal": subtotal - tax if inclusive else subtotal, "TotalTax": tax,
            "Total": subtotal if inclusive else subtotal + tax}  # fmt: skip


@contextmanager
def fake_xero(now: Callable[[], datetime], *, secret: str | None = None) -> Iterator[FakeXero]:
    fake = FakeXero(now, secret=secret)
    with fake.server.running():
        yield fake
