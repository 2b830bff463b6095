"""Invoice numbers of two billing entities finalized at once through the HTTP API:
each entity's numbers are 1..N, no gap, no repeat (docs/billing-entities.md).

Every request runs on its own thread of the app's thread pool with its own session and
transaction; PostgreSQL serializes each prefix on its sequence row's lock (UPDATE …
RETURNING), SQLite serializes writers."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.billing_entities.builders import NORTH, entity
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

THREADS = 8
PER_ENTITY = {"acme": 14, "nordic": 11}


def test_two_entities_finalized_in_parallel_number_1_to_n_each(api: ApiClient) -> None:
    entity(api)
    entity(api, NORTH)
    api.customer("acme", billingEntityCode="acme-de")
    api.customer("nordic", billingEntityCode="north")
    drafts = [
        (customer, api.draft(customer, index=i))
        for customer, count in PER_ENTITY.items()
        for i in range(count)
    ]
    random.Random(11).shuffle(drafts)
    go = threading.Event()

    def finalize(invoice_id: str) -> tuple[int, str | None]:
        go.wait(10)
        response = api.post(f"/invoices/{invoice_id}/finalize")
        body = response.json()
        return response.status_code, body.get("number")

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(finalize, invoice_id) for _, invoice_id in drafts]
        go.set()
        results = [f.result(timeout=120) for f in futures]

    assert [status for status, _ in results] == [200] * len(drafts)
    numbers = [number for _, number in results]
    for prefix, count in (("ACME", PER_ENTITY["acme"]), ("NORTH", PER_ENTITY["nordic"])):
        taken = sorted(n for n in numbers if n and n.startswith(f"{prefix}-"))
        assert taken == [f"{prefix}-{n:06d}" for n in range(1, count + 1)]
    # What each request answered is what the ledger keeps, and each customer got its own.
    listed = api.ok("GET", "/invoices", params={"limit": 100})["data"]
    stored = {inv["id"]: (inv["customerId"], inv["number"]) for inv in listed}
    for (customer, invoice_id), (_, number) in zip(drafts, results, strict=True):
        prefix = "ACME" if customer == "acme" else "NORTH"
        assert stored[invoice_id] == (customer, number)
        assert str(number).startswith(f"{prefix}-")
