"""Period close at an injected moment: `close_period(now)` and `scheduler --once --at T`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from core.clock import FrozenClock
from invoicing.billing import BillRunner
from invoicing.billing.scheduler import close_period, month_before
from invoicing.models import BillRunRow, InvoiceRow
from invoicing.payments import providers
from invoicing.secrets import SecretBox
from rating.model import Period
from tests.billing.fakes import InMemoryUsage
from tests.billing.test_runner import OCT_CLOSE, calls, d, sessions, subscribe, tenant

__all__ = ["sessions", "tenant"]  # fixtures

ROOT = Path(__file__).resolve().parents[2]
GATEWAYS = providers.gateways(SecretBox.from_passphrase("scheduler tests"))


def test_last_month_of_any_moment():
    assert month_before(OCT_CLOSE) == Period(d("2026-10-01"), d("2026-11-01"))
    assert month_before(d("2027-01-01")) == Period(d("2026-12-01"), d("2027-01-01"))


@pytest.mark.ledger
def test_a_pass_bills_last_month_once_and_finalizes_what_is_due(sessions, tenant):
    usage = InMemoryUsage()
    subscribe(sessions, tenant, "acme")
    calls(usage, "acme", "2026-10-10", "4")
    clock = FrozenClock(OCT_CLOSE)
    runner = BillRunner(sessions, usage, clock=clock)

    [first] = close_period(sessions, runner, clock.now(), 30, GATEWAYS)
    assert (first.status, first.invoices_created, first.finalized) == ("completed", 1, 1)
    [again] = close_period(sessions, runner, clock.now(), 30, GATEWAYS)
    assert (again.bill_run_id, again.invoices_created, again.finalized) == (None, 0, 0)
    with sessions() as session:
        [invoice] = session.execute(select(InvoiceRow)).unique().scalars()
        assert (invoice.status, invoice.number, str(invoice.total)) == ("OPEN", "INV-000001", "12")
        assert invoice.issued_at == OCT_CLOSE
        assert invoice.due_at == OCT_CLOSE.replace(month=12)
        assert len(session.execute(select(BillRunRow)).all()) == 1


@pytest.mark.ledger
@pytest.mark.clickhouse
def test_scheduler_replays_a_moment(ledger_url, sessions, tenant, tmp_path):
    subscribe(sessions, tenant, "acme")
    env = {
        **os.environ,
        "METERLINE_DATA_DIR": str(tmp_path / "data"),
        "METERLINE_DATABASE_URL": ledger_url,
        "METERLINE_INVOICE_DUE_DAYS": "30",
    }
    env.pop("METERLINE_CLICKHOUSE_DSN", None)
    command = [sys.executable, "-m", "meterline.cli", "scheduler", "--at", "2026-11-01T00:05:00Z"]
    for _ in range(2):  # the replay is idempotent
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
    with sessions() as session:
        [invoice] = session.execute(select(InvoiceRow)).unique().scalars()
        assert (invoice.period_start, invoice.status, str(invoice.total)) == (
            d("2026-10-01"), "OPEN", "10",
        )  # fmt: skip
        assert invoice.issued_at == OCT_CLOSE
        [run] = session.execute(select(BillRunRow)).scalars()
        assert (run.status, run.started_at) == ("completed", OCT_CLOSE)
