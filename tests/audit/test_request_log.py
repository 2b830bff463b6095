"""The API request log: method, path, route, status, latency and key id of each request
of a tenant's key; never a body, a header or a query string; unauthenticated requests
and probes are not logged; filters, pages, tenant isolation, retention; a writer that
cannot write drops its rows and never fails a request."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.request_log import RequestLogWriter, writer_of
from invoicing.models import RequestLogRow
from invoicing.request_log import Request
from invoicing.retention import purge_expired
from tests.audit.conftest import key_id, request_log
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient

pytestmark = pytest.mark.ledger

SECRET_QUERY = "sk_live_query_secret_998877"


def _rows(api: ApiClient) -> int:
    writer = writer_of(api.app)
    if writer is not None:
        writer.flush()
    with api.runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RequestLogRow)) or 0)


def test_a_request_is_logged_without_body_header_or_query(api: ApiClient) -> None:
    body = {"externalId": "acme", "name": "Secret Name Inc", "currency": "USD"}
    created = api.post("/customers", json=body)
    assert created.status_code == 201
    request_id = created.headers["x-request-id"]
    api.clock.advance(timedelta(seconds=1))
    api.ok("GET", "/customers/acme", params={"token": SECRET_QUERY})
    api.clock.advance(timedelta(seconds=1))
    api.error("GET", "/customers/nobody", 404)

    logged = request_log(api)
    # newest first; the GET /request-log itself is logged after its own answer
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [
        ("GET", "/api/v1/customers/nobody", 404),
        ("GET", "/api/v1/customers/acme", 200),
        ("POST", "/api/v1/customers", 201),
    ]
    post = logged[-1]
    assert post["requestId"] == post["id"] == request_id
    assert post["route"] == "/api/v1/customers"
    assert logged[0]["route"] == "/api/v1/customers/{external_id}"
    assert post["apiKeyId"] == key_id(api)
    assert post["at"] == "2026-11-01T09:00:00Z"
    assert isinstance(post["latencyMs"], float) and 0 <= post["latencyMs"] < 10_000
    text = json.dumps(logged)
    for absent in ("Secret Name Inc", SECRET_QUERY, "token=", api.api_key, "Bearer"):
        assert absent not in text
    with api.runtime.sessions() as session:
        stored = " ".join(
            str(value) for row in session.execute(select(RequestLogRow)).all() for value in row
        )
    assert api.api_key not in stored and SECRET_QUERY not in stored


def test_requests_without_a_valid_key_and_probes_are_not_logged(api: ApiClient) -> None:
    anonymous = TestClient(api.app, base_url="http://testserver")
    assert anonymous.get("/api/v1/customers").status_code == 401
    bad = {"Authorization": "Bearer ml_not_a_key", "X-Tenant-Id": api.tenant_id}
    assert anonymous.get("/api/v1/customers", headers=bad).status_code == 401
    assert anonymous.get("/healthz").status_code in (200, 503)
    api.get("/healthz")  # even with the key: probes are not logged
    assert _rows(api) == 0
    # a valid key without its tenant header is logged under the key's tenant (401)
    no_tenant = {"Authorization": f"Bearer {api.api_key}"}
    assert anonymous.get("/api/v1/customers", headers=no_tenant).status_code == 401
    assert [(r["path"], r["status"]) for r in request_log(api)] == [("/api/v1/customers", 401)]


def test_a_validation_error_is_logged_and_a_body_refused_before_auth_is_not(
    api: ApiClient,
) -> None:
    assert api.post("/customers", json={"externalId": "x"}).status_code == 422
    # Not JSON: FastAPI refuses it before the key is looked at (docs/audit-log.md).
    bad = api.post("/customers", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert [r["status"] for r in request_log(api, method="post")] == [422]


def test_filters_and_keyset_pages(api: ApiClient) -> None:
    api.customer("acme")
    for i in range(5):
        api.clock.advance(timedelta(minutes=1))
        api.get(f"/customers/c{i}")  # 404s
    api.clock.advance(timedelta(minutes=1))
    api.ok("GET", "/customers")

    assert len(request_log(api, status=404)) == 5
    assert [r["path"] for r in request_log(api, method="POST")] == ["/api/v1/customers"]
    by_route = request_log(api, path="/api/v1/customers/{external_id}")
    assert len(by_route) == 5
    assert [r["path"] for r in request_log(api, path="/api/v1/customers/c2")] == [
        "/api/v1/customers/c2"
    ]
    start, end = DEFAULT_NOW + timedelta(minutes=2), DEFAULT_NOW + timedelta(minutes=3)
    window = request_log(api, status=404, **{"from": start.isoformat(), "to": end.isoformat()})
    assert [r["path"] for r in window] == ["/api/v1/customers/c2", "/api/v1/customers/c1"]

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "status": 404}
        if cursor:
            params["cursor"] = cursor
        page = api.ok("GET", "/request-log", params=params)
        seen.extend(page["data"])
        if (cursor := page["nextCursor"]) is None:
            break
    assert [r["path"] for r in seen] == [f"/api/v1/customers/c{i}" for i in (4, 3, 2, 1, 0)]
    api.error("GET", "/request-log", 422, params={"status": 42})
    api.error("GET", "/request-log", 422, params={"method": "BREW"})
    api.error("GET", "/request-log", 422, params={"to": "not-a-date"})


def test_a_tenant_never_sees_another_tenants_requests(api: ApiClient, other: ApiClient) -> None:
    api.customer("acme")
    other.get("/customers/acme")  # B asks about a name A has: 404 in B's log only
    mine = request_log(api)
    theirs = request_log(other)
    assert [(r["method"], r["status"]) for r in mine] == [("POST", 201)]
    assert [(r["method"], r["status"]) for r in theirs] == [("GET", 404)]
    assert {r["apiKeyId"] for r in theirs} == {key_id(other)}
    # A's key with B's tenant id: 403, logged in A's log (the key's owner), not B's
    assert api.get("/customers", headers={"X-Tenant-Id": other.tenant_id}).status_code == 403
    assert [r["status"] for r in request_log(other) if r["path"] == "/api/v1/customers"] == []
    assert 403 in [r["status"] for r in request_log(api)]


def test_retention_purges_requests_older_than_the_tenants_days(
    api: ApiClient, other: ApiClient
) -> None:
    api.ok("PUT", "/settings", json={"requestLogRetentionDays": 7})
    other.ok("GET", "/settings")
    api.clock.advance(timedelta(days=7))
    api.ok("GET", "/settings")
    _rows(api), _rows(other)
    sessions = api.runtime.sessions
    week = DEFAULT_NOW + timedelta(days=7)
    assert purge_expired(sessions, week).requests == 0
    assert purge_expired(sessions, week + timedelta(seconds=1)).requests == 1  # A's PUT
    assert purge_expired(sessions, week + timedelta(seconds=1)).requests == 0
    api.clock.set(week + timedelta(seconds=1))
    assert [r["at"] for r in request_log(api)] == ["2026-11-08T09:00:00Z"]
    # B keeps the default 30 days (A's GET of day 7 goes at day 14 and a second)
    month = DEFAULT_NOW + timedelta(days=30)
    _rows(api)  # the GET /request-log above is written after its answer
    assert purge_expired(sessions, month).requests == 2  # A's two reads of day 7 and 7+1s
    assert purge_expired(sessions, month + timedelta(seconds=1)).requests == 1  # B's GET
    assert request_log(other) == []


def test_the_scheduler_pass_runs_the_purge(api: ApiClient) -> None:
    from meterline import jobs

    api.customer("acme")
    _rows(api)
    result = jobs.scheduler_pass(api.runtime, DEFAULT_NOW + timedelta(days=400))
    assert any(
        line.startswith("retention: 1 activity entries, 1 requests") for line in result.lines
    )
    assert _rows(api) == 0


def test_a_writer_that_cannot_write_drops_and_logs(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> Any:
        raise RuntimeError("the ledger is away")

    writer = RequestLogWriter(broken, interval=0.01)  # type: ignore[arg-type]
    row = Request(api.tenant_id, DEFAULT_NOW, "req_x", None, "GET", "/x", None, 200, 1)
    with caplog.at_level(logging.ERROR, logger="meterline.request_log"):
        writer.put(row)
        assert writer.flush(timeout=5)
    assert writer.dropped == 1 and "could not be written" in caplog.text
    writer.close()
    writer.put(row)  # closed: dropped at once, never blocks
    assert writer.dropped == 2

    # and through the app: a failing writer never changes an answer
    api.ok("GET", "/settings")
    live = writer_of(api.app)
    assert live is not None
    live._sessions = broken  # type: ignore[assignment]
    assert api.get("/customers").status_code == 200


def test_a_full_queue_drops_instead_of_waiting(api: ApiClient) -> None:
    writer = RequestLogWriter(api.runtime.sessions, capacity=2, interval=5.0)
    for i in range(5):
        writer.put(Request(api.tenant_id, DEFAULT_NOW, f"req_{i}", None, "GET", "/x", None, 200, 1))
    assert writer.dropped >= 3
    writer.close()
    assert _rows(api) == 2
