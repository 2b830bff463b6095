"""The custom-webhook connector: the document POSTed to the tenant's own endpoint.

    POST {url}
    Content-Type: application/json
    X-Meterline-Event: invoice.sync | credit_note.sync | erp.test
    X-Meterline-Signature: <lowercase hex HMAC-SHA256(secret, exact raw body)>
    Idempotency-Key: <the invoice's (credit note's) id>, the same on every sync of it

The body is the document as its GET returns it or, with a `template`, that template
filled from it: each string value starting with `$` is a JSONPath query (RFC 9535) of
the document. A singular query (`$.customer.name`) gives its value or null; one that
can match many (`$.lines[*].amount`) gives the list of matches. Nested objects and
lists of the template are filled the same way; other values are copied as they are.
The customer and, for a credit note, the credited invoice are reachable as
`$.customer` and `$.invoice` next to the document's own fields.

Any 2xx is success; the ERP's id of the record is the `id` the endpoint answers, else
the document's own id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import jsonpath
import orjson
from pydantic import Field, field_validator

from invoicing.erp.base import ConnectorConfig, Document, External, Pushed, SyncError
from invoicing.webhooks.signing import signature

NAME = "custom_webhook"
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Meterline-ERP-Sync/1"


class CustomWebhookConfig(ConnectorConfig):
    url: str = Field(pattern=r"^https?://", max_length=2000)
    secret: str = Field(min_length=1)
    template: dict[str, Any] | None = None

    @field_validator("template")
    @classmethod
    def _queries_compile(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            for where, query in _queries(value, "template"):
                try:
                    jsonpath.compile(query)
                except jsonpath.JSONPathError as error:
                    raise ValueError(
                        f"{where}: {query!r} is not a JSONPath query: {error}"
                    ) from None
        return value


def _queries(node: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(node, str):
        return [(where, node)] if node.startswith("$") else []
    if isinstance(node, Mapping):
        return [q for key, value in node.items() for q in _queries(value, f"{where}.{key}")]
    if isinstance(node, list):
        return [q for i, value in enumerate(node) for q in _queries(value, f"{where}[{i}]")]
    return []


def fill(template: Any, source: Mapping[str, Any]) -> Any:
    """The template with each query replaced by what it finds in `source`."""
    if isinstance(template, str) and template.startswith("$"):
        path = jsonpath.compile(template)
        found = path.findall(source)
        if isinstance(path, jsonpath.JSONPath) and path.singular_query():
            return found[0] if found else None
        return found
    if isinstance(template, Mapping):
        return {key: fill(value, source) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, source) for value in template]
    return template


def payload(config: CustomWebhookConfig, document: Document) -> dict[str, Any]:
    if config.template is None:
        return dict(document.body)
    source = {**document.body, "customer": document.customer}
    if document.invoice is not None:
        source["invoice"] = document.invoice
    filled = fill(config.template, source)
    assert isinstance(filled, dict)
    return filled


class CustomWebhookConnector:
    provider = NAME

    def __init__(
        self, config: CustomWebhookConfig, *, transport: httpx.BaseTransport | None = None
    ):
        self.config = config
        self._client = httpx.Client(
            timeout=httpx.Timeout(TIMEOUT_SECONDS),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    def push(self, document: Document, existing: External | None) -> Pushed:
        body = orjson.dumps(payload(self.config, document))
        response = self._post(f"{document.kind}.sync", body, document.id)
        found = _json_id(response)
        return Pushed(
            found or (existing.id if existing else document.id), None, response.status_code
        )

    def test(self) -> int | None:
        body = orjson.dumps({"type": "erp.test", "data": {}})
        return self._post("erp.test", body, None).status_code

    def _post(self, event: str, body: bytes, key: str | None) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "X-Meterline-Event": event,
            "X-Meterline-Signature": signature(self.config.secret, body),
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            response = self._client.post(self.config.url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise SyncError(f"no answer in {TIMEOUT_SECONDS:g} s") from None
        except httpx.HTTPError as error:
            raise SyncError(f"{type(error).__name__}: {error}") from None
        if not response.is_success:
            raise SyncError(_describe(response), response.status_code)
        return response

    def close(self) -> None:
        self._client.close()


def _json_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return str(found) if isinstance(found, str | int) and found != "" else None


def _describe(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f"HTTP {response.status_code}" + (f": {text[:300]}" if text else "")
