"""Overdue, dunning and UNCOLLECTIBLE, travelling in time with the scheduler's invoice
jobs (`lifecycle_pass` at a moment, as `meterline scheduler --once --at` runs them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from invoicing.billing.scheduler import TenantClose, lifecycle_pass
from invoicing.models import DomainEventRow, DunningStepRow
from invoicing.payments import providers
from tests.helpers.ledger_api import DEFAULT_NOW, ApiClient

pytestmark = pytest.mark.ledger

DUE = DEFAULT_NOW + timedelta(days=30)  # default terms: 30 days


def run_at(api: ApiClient, at: datetime) -> TenantClose:
    api.clock.set(at)
    return lifecycle_pass(
        api.runtime.sessions,
        api.tenant_id,
        at,
        30,
        providers.gateways(api.runtime.settings.secrets),
    )


def _status(api: ApiClient, invoice_id: str) -> str:
    status: str = api.ok("GET", f"/invoices/{invoice_id}")["status"]
    return status


def _dunning(api: ApiClient, invoice_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.ok("GET", f"/invoices/{invoice_id}/dunning")["data"]
    return data


def _state(api: ApiClient) -> tuple[int, int]:
    with api.runtime.sessions() as session:
        steps = session.scalar(select(func.count()).select_from(DunningStepRow))
        events = session.scalar(select(func.count()).select_from(DomainEventRow))
    return int(steps or 0), int(events or 0)


def test_default_schedule_overdue_steps_then_uncollectible(api: ApiClient) -> None:
    api.customer("acme")
    invoice = api.open_invoice(total="50.00")["id"]
    assert api.ok("GET", "/dunning") == {
        "steps": [{"afterDays": d} for d in (1, 3, 7, 14, 21)],
        "uncollectibleAfterDays": 30,
    }
    # at dueAt exactly it is not yet overdue; a second later it is
    assert run_at(api, DUE).overdue == 0 and _status(api, invoice) == "OPEN"
    assert run_at(api, DUE + timedelta(seconds=1)).overdue == 1
    assert _status(api, invoice) == "OVERDUE" and _dunning(api, invoice) == []
    # step 1 one day after dueAt, once however often the pass runs
    report = run_at(api, DUE + timedelta(days=1))
    assert report.dunning_steps == 1
    before = _state(api)
    assert run_at(api, DUE + timedelta(days=1)).dunning_steps == 0
    assert _state(api) == before  # a second pass at the same moment changes nothing
    [step] = _dunning(api, invoice)
    assert step == {
        "step": 1,
        "at": "2026-12-02T09:00:00Z",
        "scheduledAt": "2026-12-02T09:00:00Z",
        "paymentAttempted": False,
        "result": "reminded",
    }
    # the scheduler was away until day 8: steps 2 and 3 are recorded, the earlier skipped
    assert run_at(api, DUE + timedelta(days=8)).dunning_steps == 2
    assert [(s["step"], s["result"]) for s in _dunning(api, invoice)] == [
        (1, "reminded"), (2, "skipped"), (3, "reminded"),
    ]  # fmt: skip
    run_at(api, DUE + timedelta(days=21))
    assert [s["step"] for s in _dunning(api, invoice)] == [1, 2, 3, 4, 5]
    assert run_at(api, DUE + timedelta(days=29, hours=23)).uncollectible == 0
    assert run_at(api, DUE + timedelta(days=30)).uncollectible == 1
    assert _status(api, invoice) == "UNCOLLECTIBLE"
    assert run_at(api, DUE + timedelta(days=31)) == TenantClose(api.tenant_id, None, None, 0, 0)
    api.error("POST", f"/invoices/{invoice}/payments", 409, json={"amount": "1"})
    with api.runtime.sessions() as session:
        types = list(
            session.execute(
                select(DomainEventRow.type)
                .where(DomainEventRow.object_id == invoice)
                .order_by(DomainEventRow.created_at)
            ).scalars()
        )
    assert types == ["invoice.finalized", "invoice.overdue"] + ["invoice.dunning_step"] * 5 + [
        "invoice.uncollectible"
    ]


def test_a_custom_schedule_and_its_validation(api: ApiClient) -> None:
    body = {"steps": [{"afterDays": d} for d in (2, 4, 6, 8, 10)], "uncollectibleAfterDays": 12}
    assert api.ok("PUT", "/dunning", json=body) == body
    assert api.ok("GET", "/dunning") == body
    api.customer("acme")
    invoice = api.open_invoice()["id"]
    run_at(api, DUE + timedelta(days=1))
    assert _status(api, invoice) == "OVERDUE" and _dunning(api, invoice) == []
    run_at(api, DUE + timedelta(days=2))
    assert [s["step"] for s in _dunning(api, invoice)] == [1]
    run_at(api, DUE + timedelta(days=12))
    assert _status(api, invoice) == "UNCOLLECTIBLE"
    for bad in (
        {"steps": [{"afterDays": d} for d in (1, 2, 3, 4)], "uncollectibleAfterDays": 30},
        {"steps": [{"afterDays": d} for d in (1, 3, 3, 14, 21)], "uncollectibleAfterDays": 30},
        {"steps": [{"afterDays": d} for d in (1, 3, 7, 14, 21)], "uncollectibleAfterDays": 20},
        {"steps": [{"afterDays": d} for d in (0, 3, 7, 14, 21)], "uncollectibleAfterDays": 30},
        {"steps": [{"afterDays": "x"}] * 5, "uncollectibleAfterDays": 30},
    ):
        api.error("PUT", "/dunning", 422, json=bad)
    assert api.ok("GET", "/dunning") == body


def test_payment_after_overdue_settles_and_stops_dunning(api: ApiClient) -> None:
    api.customer("acme", netPaymentTermDays=0)
    invoice = api.open_invoice(total="20.00")["id"]
    run_at(api, DEFAULT_NOW + timedelta(days=1))
    assert _status(api, invoice) == "OVERDUE"
    api.ok("POST", f"/invoices/{invoice}/payments", json={"amount": "20.00"})
    assert _status(api, invoice) == "PAID"
    run_at(api, DEFAULT_NOW + timedelta(days=40))
    assert _status(api, invoice) == "PAID" and [s["step"] for s in _dunning(api, invoice)] == [1]


def test_grace_period_keeps_drafts_until_it_ends(api: ApiClient) -> None:
    api.customer("acme", invoiceGraceDays=3)
    draft = api.draft()  # period 2026-10-01 .. 2026-10-02
    period_end = datetime.fromisoformat(api.ok("GET", f"/invoices/{draft}")["periodEnd"])
    assert run_at(api, period_end + timedelta(days=3) - timedelta(seconds=1)).finalized == 0
    assert _status(api, draft) == "DRAFT"
    assert run_at(api, period_end + timedelta(days=3)).finalized == 1
    invoice = api.ok("GET", f"/invoices/{draft}")
    assert invoice["status"] == "OPEN" and invoice["number"] == "INV-000001"
    assert run_at(api, period_end + timedelta(days=3)).finalized == 0


def test_dunning_of_another_tenants_invoice_is_404(api: ApiClient) -> None:
    api.error("GET", "/invoices/inv_nope/dunning", 404)
