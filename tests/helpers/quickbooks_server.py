"""A local HTTP server that answers as QuickBooks Online's Accounting API and Intuit's
OAuth 2.0 token endpoint document, and checks what it gets.

Token endpoint (`POST /oauth2/v1/tokens/bearer`): HTTP Basic with the app's client id
and secret (401 `invalid_client` otherwise), a form body, `grant_type`
`authorization_code` (a code issued by `issue_code`, used once, with the redirect URI it
was issued for) or `refresh_token` (the current refresh token: every refresh rotates
it, and the old one is `invalid_grant` from then on). Tokens answer `expires_in` 3600.

API (`/v3/company/{realmId}/…`): a bearer token of this realm, not expired by the
injected clock (401 Fault 3200 in the lower-case spelling Intuit uses for auth
faults), `minorversion=75`, `Accept: application/json`, JSON bodies. Writes with a
`requestid` already seen are answered with the first answer and change nothing (a
different body under it is Fault 600). Customers need a unique DisplayName (6240);
invoice and credit memo lines need a known item, number amounts and Amount = Qty x
UnitPrice when both are sent (6070). An update is sparse, names the Id and the current
SyncToken (stale: 400 Fault 5010) and advances the SyncToken.
`server.script(...)` / `server.lose_answers(...)` fail before / after the effect.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.clock import FrozenClock
from tests.helpers.loopback import IdempotencyKeys, LoopbackServer, Request, Response

CLIENT_ID = "ABm2ZxQ8meterlineQBOclientid0000000000000000"
CLIENT_SECRET = "qbo-secret-7f3a9c"
REALM = "9341452725837120"
REDIRECT_URI = "https://meterline.example/api/v1/erp/oauth/callback"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
MINOR_VERSION = "75"
LIFETIME = timedelta(hours=1)
ENTITIES = {"customer": "Customer", "item": "Item", "invoice": "Invoice",
            "creditmemo": "CreditMemo", "account": "Account"}  # fmt: skip
QUERY = re.compile(
    r"^SELECT \* FROM (\w+) WHERE (\w+) = '((?:[^'\\]|\\.)*)'(?: MAXRESULTS (\d+))?$"
)
HEADER_FIELDS = {"CustomerRef", "CurrencyRef", "DocNumber", "TxnDate", "DueDate",
                 "PrivateNote", "Line", "TxnTaxDetail", "CustomerMemo"}  # fmt: skip
UPDATE_FIELDS = {"Id", "SyncToken", "sparse"}


def fault(status: int, code: str, message: str, detail: str = "") -> Response:
    error = {"Message": message, "Detail": detail or message, "code": code, "element": ""}
    body = {"Fault": {"Error": [error], "type": "ValidationFault"}, "time": "2026-11-02T09:00:00Z"}
    return Response(status, body, headers={"intuit_tid": f"tid-{code}"})


def auth_fault(detail: str) -> Response:
    error = {"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
             "detail": detail, "code": "3200", "element": None}  # fmt: skip
    return Response(401, {"fault": {"error": [error], "type": "AUTHENTICATION"}, "time": 0})


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | Decimal)


class FakeQuickBooks:
    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.server = LoopbackServer(self.app)
        self.codes: dict[str, str] = {}  # code -> redirect_uri
        self.access: dict[str, Any] = {}  # access token -> expiry
        self.refresh_token: str | None = None
        self.tokens_issued = 0
        self.reject_tokens = False  # the app's access revoked: every token refused
        self.records: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in ENTITIES}
        self.records["account"]["1"] = {"Id": "1", "Name": "Services", "AccountType": "Income",
                                        "SyncToken": "0"}  # fmt: skip
        self.created: dict[str, int] = {e: 0 for e in ENTITIES}
        self._ids = 100
        self._requests = IdempotencyKeys()
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return self.server.url + TOKEN_PATH

    def issue_code(self, redirect_uri: str = REDIRECT_URI) -> str:
        code = f"AB11{len(self.codes):04d}authcode"
        self.codes[code] = redirect_uri
        return code

    def grant(self) -> tuple[str, str]:
        """Tokens as if the user had consented already: (access, refresh)."""
        with self._lock:
            return self._issue()

    def add(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        """A record made in QuickBooks by someone else."""
        with self._lock:
            saved = {**record, "Id": self._next_id(), "SyncToken": "0"}
            self.records[entity][saved["Id"]] = saved
            return saved

    def edit(self, entity: str, record_id: str) -> None:
        """An accountant's edit in QuickBooks: the SyncToken moves on."""
        with self._lock:
            found = self.records[entity][record_id]
            found["SyncToken"] = str(int(found["SyncToken"]) + 1)

    def writes(self, entity: str) -> list[Request]:
        path = f"/v3/company/{REALM}/{entity}"
        return [r for r in self.server.requests if r.method == "POST" and r.path == path]

    # -- the app -----------------------------------------------------------------------

    def app(self, request: Request) -> Response:
        with self._lock:
            if request.path == TOKEN_PATH:
                return self._token(request)
            return self._api(request)

    def _issue(self) -> tuple[str, str]:
        self.tokens_issued += 1
        access = f"eyJ.access.{self.tokens_issued}"
        refresh = f"AB11refresh{self.tokens_issued:04d}"
        self.access[access] = self.clock.now() + LIFETIME
        self.refresh_token = refresh
        return access, refresh

    def _token(self, request: Request) -> Response:
        pair = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.method != "POST" or request.headers.get("authorization") != f"Basic {pair}":
            return Response(401, {"error": "invalid_client"})
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return Response(400, {"error": "invalid_request"})
        form = {k: v[0] for k, v in request.form().items()}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            issued_for = self.codes.pop(form.get("code", ""), None)
            if issued_for is None or issued_for != form.get("redirect_uri"):
                return Response(400, {"error": "invalid_grant"})
        elif grant == "refresh_token":
            if not self.refresh_token or form.get("refresh_token") != self.refresh_token:
                return Response(400, {"error": "invalid_grant"})
        else:
            return Response(400, {"error": "unsupported_grant_type"})
        access, refresh = self._issue()
        return Response(200, {"token_type": "bearer", "access_token": access,
                              "refresh_token": refresh, "expires_in": 3600,
                              "x_refresh_token_expires_in": 8726400})  # fmt: skip

    def _api(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["v3", "company"]:
            return fault(404, "404", "Not Found", request.path)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expiry = self.access.get(token)
        if expiry is None or self.reject_tokens:
            return auth_fault("Token revoked")
        if expiry <= self.clock.now():
            return auth_fault("Token expired: " + token)
        if parts[2] != REALM:
            return Response(403, {"fault": {"error": [{"message": "AuthorizationFailed",
                                  "code": "3100"}], "type": "SERVICE"}})  # fmt: skip
        if request.query.get("minorversion") != [MINOR_VERSION]:
            return fault(400, "4001", "Invalid minorversion", str(request.query))
        if request.headers.get("accept") != "application/json":
            return fault(400, "4002", "Accept must be application/json")
        resource, rest = parts[3], parts[4:]
        if request.method == "GET":
            return self._read(resource, rest, request)
        if request.method != "POST" or rest or resource not in ENTITIES:
            return fault(400, "500", "Unsupported Operation", request.path)
        if request.headers.get("content-type") != "application/json":
            return fault(415, "1050", "Invalid Content Type")
        body = request.json()
        rid = (request.query.get("requestid") or [None])[0]
        if rid is None:
            return self._write(resource, body)
        if len(rid) > 50:
            return fault(400, "2050", "requestid longer than 50 characters")
        return self._requests.once(
            f"{resource}:{rid}",
            body,
            lambda: self._write(resource, body),
            fault(400, "600", "Duplicate Request ID", rid),
        )

    def _read(self, resource: str, rest: list[str], request: Request) -> Response:
        if resource == "companyinfo" and rest == [REALM]:
            return Response(200, {"CompanyInfo": {"Id": "1", "CompanyName": "Meterline Demo Co",
                                                  "Country": "US", "SyncToken": "3"}})  # fmt: skip
        if resource == "query" and not rest:
            return self._query((request.query.get("query") or [""])[0])
        if resource in ENTITIES and len(rest) == 1:
            found = self.records[resource].get(rest[0])
            if found is None:
                return fault(400, "610", "Object Not Found", f"{resource} {rest[0]}")
            return Response(200, {ENTITIES[resource]: found})
        return fault(404, "404", "Not Found", request.path)

    def _query(self, statement: str) -> Response:
        match = QUERY.match(statement)
        if match is None:
            return fault(400, "4000", "Error parsing query", statement)
        name, field, literal = match.group(1), match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", literal)
        entity = next((k for k, v in ENTITIES.items() if v == name), None)
        if entity is None:
            return fault(400, "4001", "Invalid query", f"no entity {name}")
        rows = [r for r in self.records[entity].values() if r.get(field) == value]
        limit = int(match.group(4) or 100)
        answer: dict[str, Any] = (
            {name: rows[:limit], "startPosition": 1, "maxResults": len(rows[:limit])}
            if rows
            else {}
        )
        return Response(200, {"QueryResponse": answer, "time": "2026-11-02T09:00:00Z"})

    def _write(self, resource: str, body: Any) -> Response:
        if not isinstance(body, dict):
            return fault(400, "2010", "Request has invalid or unsupported property")
        if resource == "customer":
            return self._customer(body)
        if resource == "item":
            return self._item(body)
        if resource in ("invoice", "creditmemo"):
            return self._transaction(resource, body)
        return fault(400, "500", "Unsupported Operation", resource)

    def _customer(self, body: dict[str, Any]) -> Response:
        name = body.get("DisplayName")
        if not isinstance(name, str) or not name:
            return fault(400, "2020", "Required param missing", "DisplayName")
        if any(r["DisplayName"] == name for r in self.records["customer"].values()):
            return fault(400, "6240", "Duplicate Name Exists Error",
                         f"The name supplied already exists. : {name}")  # fmt: skip
        return self._create("customer", body)

    def _item(self, body: dict[str, Any]) -> Response:
        account = (body.get("IncomeAccountRef") or {}).get("value")
        if body.get("Type") != "Service" or account not in self.records["account"]:
            return fault(400, "2020", "Required param missing", "IncomeAccountRef")
        if any(r["Name"] == body.get("Name") for r in self.records["item"].values()):
            return fault(400, "6240", "Duplicate Name Exists Error", str(body.get("Name")))
        return self._create("item", body)

    def _transaction(self, resource: str, body: dict[str, Any]) -> Response:
        unknown = set(body) - HEADER_FIELDS - UPDATE_FIELDS
        if unknown:
            return fault(400, "2010", "Request has invalid or unsupported property",
                         f"Property Name:{sorted(unknown)}")  # fmt: skip
        if "Id" in body:
            return self._update(resource, body)
        problem = self._check_transaction(body)
        if problem is not None:
            return problem
        return self._create(resource, {**body, "TotalAmt": _total(body)})

    def _update(self, resource: str, body: dict[str, Any]) -> Response:
        if body.get("sparse") is not True:
            return fault(400, "2010", "full updates are not expected here")
        found = self.records[resource].get(str(body["Id"]))
        if found is None:
            return fault(400, "610", "Object Not Found", f"{resource} {body['Id']}")
        if str(body.get("SyncToken")) != found["SyncToken"]:
            return fault(400, "5010", "Stale Object Error",
                         "Stale Object Error : You and Jane Accountant were working on this "
                         "at the same time.")  # fmt: skip
        changes = {k: v for k, v in body.items() if k not in UPDATE_FIELDS}
        problem = self._check_transaction({**found, **changes})
        if problem is not None:
            return problem
        found.update(changes)
        found["TotalAmt"] = _total(found)
        found["SyncToken"] = str(int(found["SyncToken"]) + 1)
        return Response(200, {ENTITIES[resource]: found, "time": "2026-11-02T09:00:00Z"})

    def _check_transaction(self, body: dict[str, Any]) -> Response | None:
        customer = (body.get("CustomerRef") or {}).get("value")
        if customer not in self.records["customer"]:
            return fault(400, "2500", "Invalid Reference Id", f"CustomerRef {customer}")
        if len(str(body.get("DocNumber", ""))) > 21:
            return fault(400, "6000", "DocNumber longer than 21 characters")
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            return fault(400, "2020", "Required param missing", "Line")
        for line in lines:
            if not _number(line.get("Amount")):
                return fault(400, "2010", "Amount must be a number", str(line.get("Amount")))
            if line.get("DetailType") == "DiscountLineDetail":
                continue
            if line.get("DetailType") != "SalesItemLineDetail":
                return fault(400, "2010", "Invalid DetailType", str(line.get("DetailType")))
            detail = line.get("SalesItemLineDetail") or {}
            if (detail.get("ItemRef") or {}).get("value") not in self.records["item"]:
                return fault(400, "2500", "Invalid Reference Id", "ItemRef")
            qty, price = detail.get("Qty"), detail.get("UnitPrice")
            if qty is not None or price is not None:
                if not (_number(qty) and _number(price)):
                    return fault(400, "2010", "Qty and UnitPrice must be numbers")
                product = (Decimal(qty) * Decimal(price)).quantize(Decimal("0.01"), ROUND_HALF_UP)
                if product != line["Amount"]:
                    return fault(400, "6070", "Amount is not equal to UnitPrice * Qty",
                                 f"{product} != {line['Amount']}")  # fmt: skip
        return None

    def _create(self, resource: str, body: dict[str, Any]) -> Response:
        saved = {**body, "Id": self._next_id(), "SyncToken": "0"}
        self.records[resource][saved["Id"]] = saved
        self.created[resource] += 1
        return Response(200, {ENTITIES[resource]: saved, "time": "2026-11-02T09:00:00Z"})

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)


def _total(body: dict[str, Any]) -> Decimal:
    total = Decimal(0)
    for line in body["Line"]:
        sign = -1 if line.get("DetailType") == "DiscountLineDetail" else 1
        total += sign * Decimal(line["Amount"])
    return total + Decimal((body.get("TxnTaxDetail") or {}).get("TotalTax", 0))


@contextmanager
def fake_quickbooks(clock: FrozenClock) -> Iterator[FakeQuickBooks]:
    fake = FakeQuickBooks(clock)
    with fake.server.running():
        yield fake
