"""The portal pages over HTTP (no browser): the token traded for a session cookie and
dropped from the URL, the cookie's flags, what each page shows and refuses."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.helpers.ledger_api import ApiClient
from tests.portal.conftest import browser, portal_url, seed

pytestmark = pytest.mark.ledger

PAGES = ("/portal", "/portal/usage", "/portal/invoices", "/portal/wallet")


def _signed_in(api: ApiClient, customer: str = "acme", **body: object) -> TestClient:
    client = browser(api)
    link = urlsplit(portal_url(api, customer, **body)["url"])
    response = client.get(f"{link.path}?{link.query}")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal"
    return client


def test_the_link_sets_a_session_cookie_and_redirects_without_the_token(api: ApiClient) -> None:
    seed(api)
    client = browser(api)
    link = urlsplit(portal_url(api, "acme")["url"])
    response = client.get(f"{link.path}?{link.query}")
    assert response.status_code == 303 and response.headers["location"] == "/portal"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("meterline_portal=mlp1.")
    for flag in ("HttpOnly", "SameSite=lax", "Path=/portal", "Max-Age=3600"):
        assert flag.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http here; https sets Secure
    assert response.headers["referrer-policy"] == "no-referrer"
    # The cookie is not the token: it does not open the account API.
    session = cookie.split(";")[0].split("=", 1)[1]
    assert session != link.query.split("=", 1)[1]
    refused = api.get("/account/subscription", headers={"Authorization": f"Bearer {session}"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_token"


def test_every_page_shows_the_customers_own_account(api: ApiClient) -> None:
    ids = seed(api)
    client = _signed_in(api)
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "Acme" in page.text and "mlp1." not in page.text
    home = client.get("/portal").text
    assert "Pro" in home and "49" in home and "25.00 USD" in home
    listing = client.get("/portal/invoices").text
    assert f"/portal/invoices/{ids['acme_open']}/pdf" in listing
    assert ids["globex_open"] not in listing and ids["acme_draft"] not in listing
    usage = client.get("/portal/usage").text
    assert "Usage figures are not available right now" in usage  # no usage store here
    pdf = client.get(f"/portal/invoices/{ids['acme_open']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    for hidden in (ids["globex_open"], ids["acme_draft"]):
        for path in (f"/portal/invoices/{hidden}", f"/portal/invoices/{hidden}/pdf"):
            missing = client.get(path)
            assert missing.status_code == 404, path
            assert "not found" in missing.text


def test_without_a_session_or_with_a_bad_link_the_page_says_why(api: ApiClient) -> None:
    seed(api)
    for path in (*PAGES, "/portal/invoices/inv_x/pdf"):
        page = browser(api).get(path)
        assert page.status_code == 401 and "This link is not valid" in page.text, path
        assert "open the portal link you were sent" in page.text
    bad = browser(api).get("/portal?token=mlp1.e30.abc")
    assert bad.status_code == 401 and "signature does not match" in bad.text
    assert "set-cookie" not in bad.headers


def test_an_expired_link_and_an_expired_session_are_refused(api: ApiClient) -> None:
    seed(api)
    link = urlsplit(portal_url(api, "acme", expiresInMinutes=1)["url"])
    client = _signed_in(api, expiresInMinutes=10)
    api.clock.advance(timedelta(minutes=2))
    late = browser(api).get(f"{link.path}?{link.query}")
    assert late.status_code == 401 and "This link has expired" in late.text
    assert "set-cookie" not in late.headers
    assert client.get("/portal").status_code == 200
    api.clock.advance(timedelta(minutes=9))
    gone = client.get("/portal")
    assert gone.status_code == 401 and "This link has expired" in gone.text


def test_text_of_the_ledger_is_escaped(api: ApiClient) -> None:
    seed(api)
    api.customer("evil", name="<script>alert(1)</script>")
    text = _signed_in(api, "evil").get("/portal").text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_sign_out_clears_the_cookie(api: ApiClient) -> None:
    seed(api)
    client = _signed_in(api)
    out = client.post("/portal/sign-out")
    assert out.status_code == 200 and "Signed out" in out.text
    assert 'meterline_portal=""' in out.headers["set-cookie"]
    assert client.get("/portal").status_code == 401


def test_static_files_and_nothing_else(api: ApiClient) -> None:
    client = browser(api)
    css = client.get("/portal/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (
        client.get("/portal/static/portal.js").headers["content-type"].startswith("text/javascript")
    )
    for name in ("../pages.py", "nope.css", "..%2Fpages.py"):
        assert client.get(f"/portal/static/{name}").status_code == 404, name
