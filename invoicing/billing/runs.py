"""Bill-run rows: creation, lookup, status and progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.errors import DomainError, NotFound, ValidationFailed
from invoicing.billing.selection import BillingItem
from invoicing.models import BillRunRow, new_id
from rating.model import Period

MAX_FAILURES = 1000  # failures kept on the run row; the count keeps growing beyond


def create_bill_run(session: Session, tenant_id: str, start: datetime, end: datetime) -> BillRunRow:
    """A pending bill run over [start, end) (a runner executes it)."""
    if end <= start:
        raise ValidationFailed("periodEnd must be after periodStart")
    row = BillRunRow(
        id=new_id("br"),
        tenant_id=tenant_id,
        period_start=start,
        period_end=end,
        status="pending",
        failures=[],
    )
    session.add(row)
    session.flush()
    return row


def get_bill_run(session: Session, tenant_id: str, bill_run_id: str) -> BillRunRow:
    """The tenant's bill run, or NotFound."""
    row = session.get(BillRunRow, bill_run_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"bill run {bill_run_id!r} not found")
    return row


def start_run(
    sessions: sessionmaker[Session], bill_run_id: str, now: datetime
) -> tuple[str, Period]:
    """Mark the run running; returns its tenant and window."""
    with sessions() as session, session.begin():
        run = session.get(BillRunRow, bill_run_id)
        if run is None:
            raise NotFound(f"bill run {bill_run_id!r} not found")
        run.status = "running"
        run.started_at = now
        return run.tenant_id, Period(run.period_start, run.period_end)


def update_run(sessions: sessionmaker[Session], bill_run_id: str, **fields: Any) -> None:
    """Set columns of the run row (progress, status), in its own transaction."""
    with sessions() as session, session.begin():
        run = session.get(BillRunRow, bill_run_id)
        assert run is not None
        for name, value in fields.items():
            setattr(run, name, value)


def load_run(sessions: sessionmaker[Session], bill_run_id: str) -> BillRunRow:
    """The run row as it stands."""
    with sessions() as session:
        run = session.get(BillRunRow, bill_run_id)
        assert run is not None
        return run


def failure(item: BillingItem, exc: Exception) -> dict[str, Any]:
    """How the run records one item that could not be invoiced."""
    entry: dict[str, Any] = {
        "subscriptionId": item.subscription.id,
        "customerId": item.subscription.customer.external_id,
        "periodStart": item.period.start.isoformat(),
        "error": f"{type(exc).__name__}: {exc}",
    }
    if isinstance(exc, DomainError):
        # A stable code (tax_provider_unavailable, …) and whether a re-run may succeed.
        entry["code"] = exc.code
        entry["retryable"] = bool(getattr(exc, "retryable", False))
    return entry
