"""The vendor connectors through our API, end to end, on SQLite and PostgreSQL: OAuth
connections (QuickBooks; Xero with PKCE, its consent page played by the fake) from
`POST /erp/connections` through the consent redirect and `GET /erp/oauth/callback` to
synced invoices, with their tokens sealed in the ledger and refreshed when they expire;
a token-based one (NetSuite) tested on connect; each re-sync updating the same ERP
record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from invoicing.models import ErpConnectionRow, ErpSyncRow
from meterline import deliverers
from tests.helpers import netsuite_server as ns
from tests.helpers import quickbooks_server as qb
from tests.helpers import xero_server as xs
from tests.helpers.ledger_api import ApiClient, ledger_api
from tests.helpers.netsuite_server import FakeNetSuite, fake_netsuite
from tests.helpers.quickbooks_server import FakeQuickBooks, fake_quickbooks
from tests.helpers.xero_server import FakeXero, fake_xero

pytestmark = pytest.mark.ledger

PUBLIC_URL = "https://billing.example.com"
CALLBACK = PUBLIC_URL + "/api/v1/erp/oauth/callback"


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    with ledger_api(ledger_url, tmp_path, public_url=PUBLIC_URL) as client:
        yield client


@pytest.fixture
def qbo(api: ApiClient) -> Iterator[FakeQuickBooks]:
    with fake_quickbooks(api.clock) as fake:
        yield fake


@pytest.fixture
def netsuite(api: ApiClient) -> Iterator[FakeNetSuite]:
    with fake_netsuite(api.clock.now) as fake:
        yield fake


def _sync(api: ApiClient) -> Any:
    return deliverers.deliver(api.runtime, api.clock.now(), webhooks_too=False).erp


def _browser(api: ApiClient) -> TestClient:
    """The user's browser coming back from the ERP: no API key, no tenant header."""
    return TestClient(api.app, base_url="http://testserver/api/v1")


def _connect_quickbooks(api: ApiClient, qbo: FakeQuickBooks) -> dict[str, Any]:
    config = {"clientId": qb.CLIENT_ID, "clientSecret": qb.CLIENT_SECRET,
              "baseUrl": qbo.url, "tokenUrl": qbo.token_url}  # fmt: skip
    pending: dict[str, Any] = api.ok(
        "POST", "/erp/connections", json={"provider": "quickbooks", "config": config}
    )
    return pending


def _consent(api: ApiClient, qbo: FakeQuickBooks, pending: dict[str, Any]) -> dict[str, Any]:
    """What the user's browser does: consent at Intuit, back to our callback."""
    query = parse_qs(urlsplit(pending["authorizeUrl"]).query)
    code = qbo.issue_code(query["redirect_uri"][0])
    response = _browser(api).get(
        "/erp/oauth/callback",
        params={"code": code, "state": query["state"][0], "realmId": qb.REALM},
    )
    assert response.status_code == 200, response.text
    active: dict[str, Any] = response.json()
    return active


def test_quickbooks_from_consent_to_synced_invoices(api: ApiClient, qbo: FakeQuickBooks) -> None:
    pending = _connect_quickbooks(api, qbo)
    assert pending["status"] == "pending_authorization" and pending["provider"] == "quickbooks"
    authorize = urlsplit(pending["authorizeUrl"])
    query = parse_qs(authorize.query)
    assert (authorize.scheme, authorize.netloc) == ("https", "appcenter.intuit.com")
    assert query["client_id"] == [qb.CLIENT_ID] and query["response_type"] == ["code"]
    assert query["scope"] == ["com.intuit.quickbooks.accounting"]
    assert query["redirect_uri"] == [CALLBACK]
    assert pending["config"]["clientSecret"] == "…" + qb.CLIENT_SECRET[-4:]
    assert qb.CLIENT_SECRET not in str(pending)

    active = _consent(api, qbo, pending)
    assert active["id"] == pending["id"] and active["status"] == "active"
    assert active["account"] == qb.REALM and active["authorizeUrl"] is None
    assert active["lastTest"]["status"] == "SUCCESS" and active["lastTest"]["responseCode"] == 200

    # the tokens are in the ledger, sealed: neither they nor the secret in plain text
    access, refresh = next(iter(qbo.access)), qbo.refresh_token
    assert access and refresh
    with api.runtime.sessions() as session:
        row = session.execute(select(ErpConnectionRow)).scalar_one()
        stored = f"{row.config} {row.credentials}"
    assert access not in stored and refresh not in stored and qb.CLIENT_SECRET not in stored

    api.customer("acme")
    invoice = api.open_invoice("acme", "250.00")
    assert _sync(api).synced == 1
    (created,) = qbo.records["invoice"].values()
    assert created["DocNumber"] == invoice["number"]
    assert sum(line["Amount"] for line in created["Line"] if "Amount" in line) >= 250

    # paid: the same QuickBooks invoice, updated under its SyncToken
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "250.00"})
    assert _sync(api).synced == 1
    (updated,) = qbo.records["invoice"].values()
    assert updated["Id"] == created["Id"] and updated["SyncToken"] == "1"
    assert qbo.created["invoice"] == 1
    with api.runtime.sessions() as session:
        sync = session.execute(select(ErpSyncRow)).scalar_one()
    assert (sync.external_id, sync.external_version) == (created["Id"], "1")


def test_expired_tokens_are_refreshed_once_and_kept(api: ApiClient, qbo: FakeQuickBooks) -> None:
    _consent(api, qbo, _connect_quickbooks(api, qbo))
    api.customer("acme")
    issued = qbo.tokens_issued
    api.clock.advance(timedelta(hours=2))  # the access token (1 h) has expired
    api.open_invoice("acme", "10.00")
    assert _sync(api).synced == 1
    assert qbo.tokens_issued == issued + 1  # refreshed before the call
    api.open_invoice("acme", "20.00", index=1)
    assert _sync(api).synced == 1
    assert qbo.tokens_issued == issued + 1  # the refreshed tokens were kept, sealed
    assert len(qbo.records["invoice"]) == 2


def test_a_revoked_app_fails_the_sync_and_logs_the_401(api: ApiClient, qbo: FakeQuickBooks) -> None:
    _consent(api, qbo, _connect_quickbooks(api, qbo))
    api.customer("acme")
    qbo.reject_tokens = True
    invoice = api.open_invoice("acme", "10.00")
    assert _sync(api).retrying == 1
    (entry,) = api.ok("GET", f"/erp/sync-log?invoiceId={invoice['id']}")["data"]
    assert entry["status"] == "FAILED" and entry["responseCode"] in (400, 401)
    assert entry["provider"] == "quickbooks" and entry["error"]


def test_the_callback_refuses_what_it_cannot_trust(api: ApiClient, qbo: FakeQuickBooks) -> None:
    pending = _connect_quickbooks(api, qbo)
    state = parse_qs(urlsplit(pending["authorizeUrl"]).query)["state"][0]
    callback, browser = "/erp/oauth/callback", _browser(api)
    denied = browser.get(callback, params={"error": "access_denied", "state": state})
    assert denied.status_code == 400 and "access_denied" in denied.text
    forged = browser.get(callback, params={"code": qbo.issue_code(CALLBACK), "state": "x" * 43})
    assert forged.status_code == 400
    assert browser.get(callback, params={"state": state}).status_code == 400
    bad_code = browser.get(callback, params={"code": "never-issued", "state": state,
                                              "realmId": qb.REALM})  # fmt: skip
    assert bad_code.status_code == 502, bad_code.text
    assert bad_code.json()["error"]["code"] == "authorization_failed"
    # still pending: the right code completes it, once
    active = _consent(api, qbo, pending)
    assert active["status"] == "active"
    replay = browser.get(callback, params={"code": qbo.issue_code(CALLBACK), "state": state})
    assert replay.status_code == 400


def test_one_erp_at_a_time_counts_a_pending_authorization(
    api: ApiClient, qbo: FakeQuickBooks, netsuite: FakeNetSuite
) -> None:
    _connect_quickbooks(api, qbo)
    second = {"provider": "netsuite", "config": _netsuite_config(netsuite)}
    error = api.error("POST", "/erp/connections", 409, json=second)
    assert error["code"] == "erp_already_connected"


def _netsuite_config(fake: FakeNetSuite, **changes: str) -> dict[str, str]:
    return {"accountId": ns.ACCOUNT, "consumerKey": ns.CONSUMER_KEY,
            "consumerSecret": ns.CONSUMER_SECRET, "tokenId": ns.TOKEN_ID,
            "tokenSecret": ns.TOKEN_SECRET, "itemId": ns.ITEM_ID,
            "subsidiaryId": ns.SUBSIDIARY_ID, "baseUrl": fake.url, **changes}  # fmt: skip


def test_netsuite_is_tested_on_connect_and_upserts_by_external_id(
    api: ApiClient, netsuite: FakeNetSuite
) -> None:
    connection = api.ok(
        "POST",
        "/erp/connections",
        json={"provider": "netsuite", "config": _netsuite_config(netsuite)},
    )
    assert connection["status"] == "active" and connection["lastTest"]["status"] == "SUCCESS"
    for key in ("consumerSecret", "tokenSecret"):
        assert connection["config"][key].startswith("…")
    api.customer("acme")
    invoice = api.open_invoice("acme", "99.95")
    assert _sync(api).synced == 1
    record = netsuite.by_external_id("invoice", invoice["id"])
    assert record is not None and record["tranId"] == invoice["number"]
    api.ok("POST", f"/invoices/{invoice['id']}/void")
    assert _sync(api).synced == 1
    assert len(netsuite.records["invoice"]) == 1  # the same record, upserted
    (newer, older) = api.ok("GET", "/erp/sync-log")["data"]
    assert newer["externalId"] == older["externalId"] == str(record["id"])


def test_netsuite_with_a_wrong_secret_connects_but_its_test_says_why(
    api: ApiClient, netsuite: FakeNetSuite
) -> None:
    config = _netsuite_config(netsuite, tokenSecret="not-the-secret")
    connection = api.ok("POST", "/erp/connections", json={"provider": "netsuite", "config": config})
    test = connection["lastTest"]
    assert (test["status"], test["responseCode"]) == ("FAILED", 401)
    assert "INVALID_LOGIN" in test["error"] or "Invalid login" in test["error"]


@pytest.fixture
def xero(api: ApiClient) -> Iterator[FakeXero]:
    with fake_xero(api.clock.now, secret=xs.CLIENT_SECRET) as fake:
        yield fake


def test_xero_with_pkce_from_consent_to_an_updated_invoice(api: ApiClient, xero: FakeXero) -> None:
    config = {"clientId": xs.CLIENT_ID, "clientSecret": xs.CLIENT_SECRET, "baseUrl": xero.url,
              "tokenUrl": xero.url + xs.TOKEN, "authorizeUrl": xero.url + xs.AUTHORIZE,
              "tenantId": xs.OTHER_TENANT}  # fmt: skip
    pending = api.ok("POST", "/erp/connections", json={"provider": "xero", "config": config})
    query = parse_qs(urlsplit(pending["authorizeUrl"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    # the user consents at Xero, which redirects the browser to our callback
    consent = httpx.get(pending["authorizeUrl"], follow_redirects=False)
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["Location"])
    assert back.path == "/api/v1/erp/oauth/callback"
    response = _browser(api).get("/erp/oauth/callback?" + back.query)
    assert response.status_code == 200, response.text
    active = response.json()
    assert active["status"] == "active" and active["account"] == xs.OTHER_TENANT
    assert active["lastTest"]["status"] == "SUCCESS"

    api.customer("acme")
    invoice = api.open_invoice("acme", "120.50")
    assert _sync(api).synced == 1
    api.ok("POST", f"/invoices/{invoice['id']}/payments", json={"amount": "120.50"})
    assert _sync(api).synced == 1
    org = xero.org(xs.OTHER_TENANT)
    assert xero.org(xs.TENANT).records["Invoices"] == {}  # the chosen organisation only
    (record,) = org.records["Invoices"].values()
    assert record["InvoiceNumber"] == invoice["number"]
    methods = [w.method for w in xero.writes(xs.API + "/Invoices")]
    assert methods == ["PUT", "POST"]  # created, then updated by its InvoiceID
    keys = {w.headers["idempotency-key"] for w in xero.writes(xs.API + "/Invoices")}
    assert len(keys) == 2  # one per content: a retry of the same content reuses its key
