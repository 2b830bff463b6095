"""/openapi.json documents every response: a 2xx schema per route, the one error shape."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app

UNTYPED: set[tuple[str, str]] = set()
TEXT = {("get", "/metrics")}
# Documents: bytes of their own media type.
DOCUMENTS = {
    ("get", "/api/v1/invoices/{invoice_id}/pdf"): "application/pdf",
    ("get", "/api/v1/invoices/{invoice_id}/xml"): "application/xml",
    ("get", "/api/v1/credit-notes/{note_id}/pdf"): "application/pdf",
    ("get", "/api/v1/credit-notes/{note_id}/xml"): "application/xml",
    ("get", "/api/v1/account/invoices/{invoice_id}/pdf"): "application/pdf",
    ("get", "/api/v1/invoices/export.csv"): "text/csv",
    ("get", "/api/v1/credit-notes/export.csv"): "text/csv",
}


def _openapi() -> dict[str, Any]:
    # The document needs no runtime: the lifespan (which opens one) does not run here.
    app = create_app(lambda: None)  # type: ignore[arg-type, return-value]
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return dict(doc["components"]["schemas"][name])
    return schema


def test_every_route_documents_its_success_response() -> None:
    doc = _openapi()
    operations = [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 40
    missing = []
    for method, path, op in operations:
        ok = {status: r for status, r in op["responses"].items() if status.startswith("2")}
        assert len(ok) == 1, (method, path, op["responses"])
        [(status, response)] = ok.items()
        if status == "204":
            assert "content" not in response, (method, path)
            continue
        if (method, path) in TEXT:
            assert list(response["content"]) == ["text/plain"], (method, path)
            continue
        if (method, path) in DOCUMENTS:
            assert list(response["content"]) == [DOCUMENTS[method, path]], (method, path)
            continue
        if (method, path) in UNTYPED:
            continue
        schema = response["content"]["application/json"]["schema"]
        if "$ref" not in schema and "properties" not in schema:
            missing.append((method, path, schema))
    assert missing == []


def test_errors_have_the_one_shape() -> None:
    doc = _openapi()
    create_plan = doc["paths"]["/api/v1/plans"]["post"]["responses"]
    for status in ("401", "403", "404", "409", "422"):
        ref = create_plan[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody")
    body = doc["components"]["schemas"]["ErrorBody"]
    assert _schema(doc, body["properties"]["error"])["required"] == ["code", "message"]
    readyz = doc["paths"]["/readyz"]["get"]["responses"]
    assert readyz["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Readiness")
    assert readyz["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/Readiness")


def test_decimals_are_strings_out_and_strings_or_numbers_in() -> None:
    doc = _openapi()
    schemas = doc["components"]["schemas"]
    assert schemas["PlanPublic"]["properties"]["baseFee"]["type"] == "string"
    assert schemas["InvoicePublic"]["properties"]["amountDue"]["type"] == "string"
    accepted = schemas["TaxCreate"]["properties"]["rate"]["anyOf"]
    assert {"type": "string", "example": "12.50"} in accepted and {"type": "number"} in accepted
    listed = doc["paths"]["/api/v1/metrics"]["get"]["responses"]["200"]
    page = _schema(doc, listed["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"data", "nextCursor"}
