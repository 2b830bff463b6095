"""A local HTTP server that answers as NetSuite's SuiteTalk REST web services (record
API v1) document, and checks what it gets.

Authentication is token-based (OAuth 1.0a, HMAC-SHA256). Every request must carry
`Authorization: OAuth realm="<ACCOUNT>", oauth_consumer_key, oauth_token,
oauth_signature_method="HMAC-SHA256", oauth_timestamp, oauth_nonce, oauth_version="1.0",
oauth_signature`; the server recomputes the signature from the request as it arrived
(method, scheme, Host, path, query, oauth fields) with its own copy of the secrets, and
answers NetSuite's 401 INVALID_LOGIN for a wrong signature, realm, key or token, for a
nonce it has seen before, and for a timestamp more than 5 minutes from its clock.

Records: `PUT /services/rest/record/v1/{customer|invoice|creditMemo}/eid:{externalId}`
is the upsert: it creates the record with that external id (204, `Location` naming a
new internal id) or updates the record that has it (204, the same `Location`). On an
update, body fields replace the stored ones and the `item` sublist is appended to
unless the query says `replace=item`, as for NetSuite's non-keyed sublists. Bodies are
checked: known fields only, references to records that exist (`entity`, `createdFrom`,
`currency`, the item), amounts as JSON numbers. `records` holds what NetSuite holds, by
record type and internal id, with numbers as exact Decimals.

`GET …/customer?limit=1` lists customers, `GET …/currency?q=symbol IS "EUR"` finds a
currency, `GET …/{type}/eid:{externalId}` (or `/{id}`) reads a record.
`server.script(...)` answers before the app (500s, 429, slow answers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.helpers.loopback import LoopbackServer, Request, Response

ACCOUNT = "1234567_SB1"
CONSUMER_KEY = "ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4"
CONSUMER_SECRET = "d26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9a8f5"
TOKEN_ID = "2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc"
TOKEN_SECRET = "c29a677df7d5439a458c063654187e3d678d73aca8e3c9d8bea1478a3eb0d295"
ITEM_ID = "501"  # the service item lines are booked on
SUBSIDIARY_ID = "3"
CURRENCIES = {"USD": "1", "GBP": "2", "EUR": "4", "JPY": "7"}  # symbol -> internal id
RECORDS = "/services/rest/record/v1"
SKEW_SECONDS = 300
FIRST_IDS = {"customer": 1201, "invoice": 8801, "creditMemo": 9901}
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_OAUTH_FIELDS = {
    "realm",
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_version",
    "oauth_signature",
}
_FIELDS = {
    "customer": {"companyName", "email", "currency", "subsidiary"},
    "invoice": {
        "entity",
        "tranId",
        "tranDate",
        "dueDate",
        "currency",
        "memo",
        "item",
        "subsidiary",
    },
    "creditMemo": {
        "entity",
        "tranId",
        "tranDate",
        "currency",
        "memo",
        "item",
        "createdFrom",
        "subsidiary",
    },
}
_LINE_FIELDS = {"item", "quantity", "rate", "amount", "description"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def error(status: int, title: str, code: str, detail: str, **more: str) -> Response:
    """NetSuite's error body: RFC 7807-like, with `o:errorDetails`."""
    found: dict[str, str] = {"detail": detail, "o:errorCode": code}
    found.update({f"o:{name}": value for name, value in more.items()})
    return Response(
        status,
        {
            "type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
            "title": title,
            "status": status,
            "o:errorDetails": [found],
        },
    )


INVALID_LOGIN = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite "
    "UI at Setup > Users/Roles > User Management > View Login Audit Trail."
)


def _unauthorized() -> Response:
    return error(401, "Unauthorized", "INVALID_LOGIN", INVALID_LOGIN)


def _bad(detail: str, path: str | None = None) -> Response:
    extra = {"errorPath": path} if path else {}
    return error(400, "Bad Request", "INVALID_CONTENT", detail, **extra)


def _pct(text: str) -> str:
    """RFC 3986 percent-encoding of the UTF-8 bytes, written out byte by byte."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"id"} and isinstance(value["id"], str):
        return value["id"]
    return None


class FakeNetSuite:
    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.server = LoopbackServer(self.app)
        self.records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in FIRST_IDS}
        self.nonces: set[str] = set()
        self.rejections: list[str] = []  # why each 401 was answered (for tests)
        self._next = dict(FIRST_IDS)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.server.url

    def by_external_id(self, record: str, external_id: str) -> dict[str, Any] | None:
        found = [r for r in self.records[record].values() if r["externalId"] == external_id]
        assert len(found) <= 1, f"two {record} records have external id {external_id}"
        return found[0] if found else None

    def puts(self, record: str | None = None) -> list[Request]:
        prefix = f"{RECORDS}/{record}/" if record else RECORDS
        return [r for r in self.server.requests if r.method == "PUT" and r.path.startswith(prefix)]

    # -- authentication -------------------------------------------------------------

    def _refused(self, request: Request) -> str | None:
        """Why the request's OAuth 1.0a signature does not hold, or None."""
        header = request.headers.get("authorization", "")
        if not header.startswith("OAuth "):
            return "no OAuth header"
        fields: dict[str, str] = {}
        for item in header[6:].split(","):
            match = re.fullmatch(r'\s*([a-z_]+)="([^"]*)"\s*', item)
            if match is None or match[1] in fields:
                return f"malformed field {item!r}"
            fields[match[1]] = re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m[1], 16)), match[2])
        if set(fields) != _OAUTH_FIELDS:
            return f"fields {sorted(fields)}"
        if fields["realm"] != ACCOUNT:
            return f"realm {fields['realm']}"
        if fields["oauth_consumer_key"] != CONSUMER_KEY or fields["oauth_token"] != TOKEN_ID:
            return "unknown consumer key or token"
        if fields["oauth_signature_method"] != "HMAC-SHA256":
            return "signature method"
        if fields["oauth_version"] != "1.0":
            return "version"
        if not fields["oauth_timestamp"].isdigit():
            return "timestamp"
        if abs(int(fields["oauth_timestamp"]) - self.now().timestamp()) > SKEW_SECONDS:
            return "timestamp too far from the clock"
        if len(fields["oauth_nonce"]) < 6:
            return "nonce too short"
        # The base string, rebuilt from the request as it arrived.
        params = [(k, v) for k, v in fields.items() if k not in ("realm", "oauth_signature")]
        params += [(k, v) for k, values in request.query.items() for v in values]
        normalized = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in params))
        url = f"http://{request.headers['host'].lower()}{request.path}"
        base = f"{request.method}&{_pct(url)}&{_pct(normalized)}"
        key = f"{_pct(CONSUMER_SECRET)}&{_pct(TOKEN_SECRET)}".encode()
        expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected.decode(), fields["oauth_signature"]):
            return "signature mismatch"
        if fields["oauth_nonce"] in self.nonces:
            return "nonce used"
        self.nonces.add(fields["oauth_nonce"])
        return None

    # -- the API --------------------------------------------------------------------

    def app(self, request: Request) -> Response:
        with self._lock:
            refused = self._refused(request)
            if refused is not None:
                self.rejections.append(refused)
                return _unauthorized()
            if not request.path.startswith(RECORDS + "/"):
                return error(404, "Not Found", "NONEXISTENT_ID", f"no route {request.path}")
            parts = request.path[len(RECORDS) + 1 :].split("/")
            record = parts[0]
            if request.method == "GET" and len(parts) == 1:
                return self._collection(record, request)
            if len(parts) != 2 or record not in self.records:
                return error(404, "Not Found", "NONEXISTENT_ID", f"no route {request.path}")
            if request.method == "GET":
                found = self._find(record, parts[1])
                if found is None:
                    return self._missing(record, parts[1])
                return Response(200, found)
            if request.method != "PUT":
                return error(405, "Method Not Allowed", "INVALID_REQUEST", request.method)
            if not parts[1].startswith("eid:"):
                return _bad("An upsert names the record by its external id (eid:…).")
            return self._upsert(record, parts[1][4:], request)

    def _collection(self, record: str, request: Request) -> Response:
        if record == "customer":
            limit = int((request.query.get("limit") or ["1000"])[0])
            ids = list(self.records["customer"])[:limit]
        elif record == "currency":
            match = re.fullmatch(r'symbol IS "([A-Z]{3})"', (request.query.get("q") or [""])[0])
            if match is None:
                return error(
                    400, "Bad Request", "INVALID_PARAMETER", "Invalid query.", errorQueryParam="q"
                )
            ids = [CURRENCIES[match[1]]] if match[1] in CURRENCIES else []
        else:
            return error(404, "Not Found", "NONEXISTENT_ID", f"no collection {record}")
        items = [{"links": [], "id": found} for found in ids]
        return Response(
            200,
            {
                "links": [],
                "count": len(items),
                "hasMore": False,
                "items": items,
                "offset": 0,
                "totalResults": len(items),
            },
        )

    def _find(self, record: str, key: str) -> dict[str, Any] | None:
        if key.startswith("eid:"):
            return self.by_external_id(record, key[4:])
        return self.records[record].get(key)

    def _missing(self, record: str, key: str) -> Response:
        return error(
            404,
            "Not Found",
            "NONEXISTENT_ID",
            f"The record instance does not exist. Provide a valid record instance "
            f"ID. ({record} {key})",
            urlPath=key,
        )

    def _upsert(self, record: str, external_id: str, request: Request) -> Response:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", external_id):
            return _bad(f"Invalid external id {external_id}.")
        if request.headers.get("content-type") != "application/json":
            return error(
                415,
                "Unsupported Media Type",
                "INVALID_HEADER",
                "Content-Type must be application/json",
                errorHeader="Content-Type",
            )
        try:
            body = request.json()
        except ValueError:
            return _bad("The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _bad("The request body must be a JSON object.")
        problem = self._check(record, body)
        if problem is not None:
            return problem
        found = self.by_external_id(record, external_id)
        replace = "item" in (request.query.get("replace") or [""])[0].split(",")
        if found is None:
            internal = str(self._next[record])
            self._next[record] += 1
            found = {"id": internal, "externalId": external_id}
            self.records[record][internal] = found
            found.update(body)
        else:
            lines = found.get("item", {}).get("items", [])
            found.update(body)
            if "item" in body and not replace:  # a non-keyed sublist: lines are appended
                found["item"] = {"items": [*lines, *body["item"]["items"]]}
        if "item" in found:
            found["total"] = sum((line["amount"] for line in found["item"]["items"]), Decimal(0))
        location = f"{self.url}{RECORDS}/{record}/{found['id']}"
        return Response(204, None, {"Location": location})

    def _check(self, record: str, body: dict[str, Any]) -> Response | None:
        unknown = set(body) - _FIELDS[record]
        if unknown:
            return _bad(f"Invalid field(s): {', '.join(sorted(unknown))}.")
        currency = _ref(body.get("currency"))
        if currency is None or currency not in CURRENCIES.values():
            return _bad(f"Invalid currency reference {body.get('currency')}.", "currency")
        if "subsidiary" in body and _ref(body["subsidiary"]) != SUBSIDIARY_ID:
            return _bad("Invalid subsidiary reference.", "subsidiary")
        if record == "customer":
            if not isinstance(body.get("companyName"), str) or not body["companyName"]:
                return _bad("Please enter value(s) for: Company Name", "companyName")
            return None
        customer = _ref(body.get("entity"))
        if customer is None or customer not in self.records["customer"]:
            return _bad(f"Invalid entity reference {body.get('entity')}.", "entity")
        for name in ("tranDate", "dueDate"):
            if name in body and not (isinstance(body[name], str) and _DATE.match(body[name])):
                return _bad(f"Invalid date value for {name}.", name)
        if "createdFrom" in body and _ref(body["createdFrom"]) not in self.records["invoice"]:
            return _bad("Invalid createdFrom reference.", "createdFrom")
        items = body.get("item", {}).get("items") if isinstance(body.get("item"), dict) else None
        if not isinstance(items, list) or not items:
            return _bad("You must enter at least one line item for this transaction.", "item")
        for i, line in enumerate(items):
            where = f"item.items[{i}]"
            if not isinstance(line, dict) or set(line) - _LINE_FIELDS:
                return _bad(f"Invalid line fields {sorted(line)}.", where)
            item = _ref(line.get("item"))
            if item != ITEM_ID:
                return _bad(
                    "Error while accessing resource: You have entered an Invalid "
                    f"Field Value {item} for the following field: item",
                    f"{where}.item",
                )
            for name in ("quantity", "rate", "amount"):
                if not _is_number(line.get(name)):
                    return _bad(f"{name} must be a number.", f"{where}.{name}")
        return None


@contextmanager
def fake_netsuite(now: Callable[[], datetime]) -> Iterator[FakeNetSuite]:
    fake = FakeNetSuite(now)
    with fake.server.running():
        yield fake
