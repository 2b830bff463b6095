"""The jobs a `meterline` command runs against a runtime: a scheduler pass and a bill
run of a month. Each returns the lines the command prints, so the same job prints the
same result whether the command runs it alone or hands it to a running `serve`
(meterline/control.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from core.clock import FrozenClock
from invoicing.billing import BillRunner, create_bill_run
from invoicing.billing.scheduler import TenantClose, close_period
from invoicing.models import Tenant
from invoicing.payments import providers
from invoicing.retention import purge_expired
from invoicing.wallet_jobs import wallet_pass
from meterline import deliverers
from meterline.runtime import Runtime

Progress = Callable[[str, int, int], None]  # (tenant id, done, total)


@dataclass
class JobResult:
    lines: list[str] = field(default_factory=list)
    ok: bool = True


def describe(close: TenantClose) -> list[str]:
    """What a pass did for one tenant, one line per kind of change."""
    lines = []
    if close.bill_run_id:
        lines.append(
            f"{close.tenant_id}: bill run {close.bill_run_id} {close.status}, "
            f"{close.invoices_created} invoices"
        )
    if close.finalized:
        collected = f" ({close.collected} collected)" if close.collected else ""
        lines.append(f"{close.tenant_id}: finalized {close.finalized} invoices{collected}")
    if close.overdue:
        lines.append(f"{close.tenant_id}: {close.overdue} invoices overdue")
    if close.dunning_steps:
        lines.append(
            f"{close.tenant_id}: {close.dunning_steps} dunning steps, "
            f"{close.payments_attempted} payments attempted"
        )
    if close.uncollectible:
        lines.append(f"{close.tenant_id}: {close.uncollectible} invoices uncollectible")
    return lines


def scheduler_pass(runtime: Runtime, at: datetime) -> JobResult:
    """Every time-driven job as of `at` (bill runs see `at` as their now)."""
    runner = BillRunner(runtime.sessions, runtime.usage, runtime.tax, FrozenClock(at))
    gateways = providers.gateways(runtime.settings.secrets)
    closes = close_period(runtime.sessions, runner, at, runtime.settings.invoice_due_days, gateways)
    result = JobResult()
    for close in closes:
        result.lines.extend(describe(close))
        if close.status not in (None, "completed"):
            result.ok = False
    result.lines.extend(wallet_pass(runtime.sessions, at))
    result.lines.extend(deliverers.deliver(runtime, at).lines())
    result.lines.extend(purge_expired(runtime.sessions, at).lines())  # log retention
    if not result.lines:
        result.lines.append(f"pass at {at.isoformat()}: nothing to do")
    return result


def bill_month(
    runtime: Runtime,
    start: datetime,
    end: datetime,
    tenant: str | None,
    progress: Progress | None = None,
) -> JobResult:
    """A bill run of [start, end) for one tenant or every tenant."""
    with runtime.session() as session:
        tenant_ids = [tenant] if tenant else list(session.execute(select(Tenant.id)).scalars())
    runner = BillRunner(runtime.sessions, runtime.usage, runtime.tax, runtime.clock)
    result = JobResult()
    for tenant_id in tenant_ids:
        with runtime.session() as session:
            run_id = create_bill_run(session, tenant_id, start, end).id

        def report(done: int, total: int, _tenant: str = tenant_id) -> None:
            if progress is not None:
                progress(_tenant, done, total)

        run = runner.run(run_id, report)
        result.lines.append(
            f"{run_id}: {run.status}, {run.invoices_created} invoices, {run.failed} failed"
        )
        if run.status != "completed":
            result.ok = False
            break
    return result
