"""The bill run: every subscription of a window, rated and settled into invoices.

    subscriptions, a chunk at a time → items to bill (idempotent) → their quantities
    (one query per metric variant
    for the chunk, from the run's staged events) → per batch: ledger contexts in bulk →
    rate each item (one path for every customer) → invoices, lines and their effects
    in one transaction → progress

A failure of one item (a tax provider that is down, say) is recorded on the run with
its code and does not stop it; a batch whose write fails is retried item by item.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core import collector, metrics
from core.clock import SYSTEM_CLOCK, Clock
from core.ids import new_ids
from invoicing.billing.contexts import ChunkContexts, load_contexts
from invoicing.billing.effects import Settled, apply_effects
from invoicing.billing.late import LateUsage
from invoicing.billing.loading import invoiced_keys, subscription_pages
from invoicing.billing.runs import MAX_FAILURES, failure, load_run, start_run, update_run
from invoicing.billing.selection import BillingItem, items_to_bill
from invoicing.billing.usage import UsageSource
from invoicing.billing.writer import bulk_insert, insert_invoices, invoice_row, line_rows
from invoicing.custom_sections import SECTION_COPIES, copy_tuples, invoice_copies
from invoicing.models import BillRunRow
from invoicing.tax.service import TaxService
from invoicing.taxes import tax_rates
from rating.context import TaxRate
from rating.model import MeteredQuantity, Period, Subscription
from rating.pipeline import RatingResult

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
CHUNK_SIZE = 20_000  # subscriptions per usage query round
WRITE_BATCH = 5_000  # items per ledger transaction


def rate_item(
    tax: TaxService,
    tenant_id: str,
    contexts: ChunkContexts,
    late: LateUsage,
    item: BillingItem,
    usage: tuple[MeteredQuantity, ...],
) -> RatingResult:
    """Rate one item with its ledger context and late usage, taxed by `tax`; what it
    takes is carried to the later items of its customer."""
    context = contexts.context(item, usage, late.prior_lines(item))
    result = tax.rate(tenant_id, context)
    contexts.absorb(item, result)
    late.billed(item, result.invoice.lines)
    return result


@dataclass
class _Tally:
    total: int = 0
    processed: int = 0
    created: int = 0
    failed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # the first MAX_FAILURES

    def fail(self, failures: Sequence[dict[str, Any]]) -> None:
        self.failed += len(failures)
        self.failures.extend(failures[: MAX_FAILURES - len(self.failures)])

    def progress_fields(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "processed": self.processed,
            "failed": self.failed,
            "invoices_created": self.created,
            "failures": list(self.failures),
        }


class BillRunner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        usage: UsageSource,
        tax: TaxService | None = None,
        clock: Clock = SYSTEM_CLOCK,
        *,
        chunk_size: int = CHUNK_SIZE,
        write_batch: int = WRITE_BATCH,
    ) -> None:
        self._sessions = sessions
        self._usage = usage
        # The process's tax provider (Runtime.tax); default: each tenant's own table.
        self._tax = TaxService() if tax is None else tax
        self._clock = clock
        self._chunk_size = chunk_size
        self._write_batch = write_batch

    def run(
        self,
        bill_run_id: str,
        progress: Progress | None = None,
        ended_by: datetime | None = None,
    ) -> BillRunRow:
        """Execute a pending bill run to completion (synchronously); with `ended_by`
        (the scheduler's pass), only the periods that have ended by then."""
        tenant_id, window = start_run(self._sessions, bill_run_id, self._clock.now())
        began, outcome = time.perf_counter(), "completed"  # a duration, not a "now"
        try:
            self._execute(bill_run_id, tenant_id, window, progress, ended_by)
        except Exception as exc:
            outcome = "failed"
            log.exception("bill run %s failed", bill_run_id)
            update_run(
                self._sessions,
                bill_run_id,
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
                finished_at=self._clock.now(),
            )
        metrics.bill_run_finished(outcome, time.perf_counter() - began)
        return load_run(self._sessions, bill_run_id)

    def bill_subscription(
        self, tenant_id: str, subscription: Subscription, customer_row_id: str, period: Period
    ) -> list[str]:
        """Invoice one subscription's `period` now, outside any bill run (a termination's
        final invoice), through the bill run's rating path; returns the invoice ids.

        Idempotent like a run: a period already invoiced creates nothing. A failure
        raises (nothing is written), so the period's bill run can still bill it."""
        cutoff = self._clock.now()
        with self._sessions() as session:
            taxes = tax_rates(session, tenant_id)
            invoiced = invoiced_keys(session, tenant_id, period, [subscription.id])
        items = items_to_bill([(subscription, customer_row_id)], period, invoiced)
        items = [i for i in items if i.period == period]
        if not items:
            return []
        usage: Mapping[str, tuple[MeteredQuantity, ...]] = {}
        if subscription.plan.charges:  # a plan of fixed fees reads no usage
            with self._usage.bill_run_usage(tenant_id) as reader:
                usage = reader.metered_quantities([i.usage_request for i in items])
        with self._sessions() as session:
            contexts = load_contexts(session, tenant_id, items, taxes)
            late = LateUsage.load(session, self._usage, tenant_id, items, cutoff)
        rated = [
            (item, rate_item(self._tax, tenant_id, contexts, late, item, usage.get(item.key, ())))
            for item in items
        ]
        ids = new_ids("inv", len(rated))
        self._write(None, tenant_id, rated, cutoff, ids)
        return ids

    def _execute(
        self,
        run_id: str,
        tenant_id: str,
        window: Period,
        progress: Progress | None,
        ended_by: datetime | None = None,
    ) -> None:
        # Late usage is billed as stored up to the run's start: a re-run at the same
        # clock time bills the same.
        cutoff = self._clock.now()
        with self._sessions() as session:
            taxes = tax_rates(session, tenant_id)
        tally = _Tally()
        if progress:
            progress(0, 0)
        pages = subscription_pages(self._sessions, tenant_id, window, self._chunk_size)
        with collector.deferred_collection(), self._usage.bill_run_usage(tenant_id) as reader:
            for page in pages:
                collector.collect()  # the last chunk's garbage, once per chunk
                with self._sessions() as session:
                    invoiced = invoiced_keys(session, tenant_id, window, [s.id for s, _ in page])
                items = items_to_bill(page, window, invoiced, ended_by)
                tally.total += len(items)
                usage = reader.metered_quantities([i.usage_request for i in items])
                for offset in range(0, len(items), self._write_batch):
                    batch = items[offset : offset + self._write_batch]
                    created, failures = self._bill(run_id, tenant_id, batch, usage, taxes, cutoff)
                    tally.created += created
                    tally.fail(failures)
                    tally.processed += len(batch)
                    collector.collect(young=True)
                    update_run(self._sessions, run_id, **tally.progress_fields())
                    if progress:
                        progress(tally.processed, tally.total)
        metrics.BILL_RUN_SUBSCRIPTIONS.labels("invoiced").inc(tally.created)
        metrics.BILL_RUN_SUBSCRIPTIONS.labels("failed").inc(tally.failed)
        update_run(
            self._sessions,
            run_id,
            status="completed",
            finished_at=self._clock.now(),
            **tally.progress_fields(),
        )

    def _bill(
        self,
        run_id: str,
        tenant_id: str,
        batch: Sequence[BillingItem],
        usage: Mapping[str, tuple[MeteredQuantity, ...]],
        taxes: tuple[TaxRate, ...],
        cutoff: datetime,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Rate and write a batch; returns the invoices created and the failures."""
        with self._sessions() as session:
            contexts = load_contexts(session, tenant_id, batch, taxes)
            late = LateUsage.load(session, self._usage, tenant_id, batch, cutoff)
        failures: list[dict[str, Any]] = []
        rated: list[tuple[BillingItem, RatingResult]] = []
        for item in batch:
            try:
                result = rate_item(
                    self._tax, tenant_id, contexts, late, item, usage.get(item.key, ())
                )
            except Exception as exc:
                failures.append(failure(item, exc))
                continue
            rated.append((item, result))
        try:
            self._write(run_id, tenant_id, rated, cutoff)
            return len(rated), failures
        except Exception as exc:
            if len(batch) == 1:
                return 0, [*failures, failure(batch[0], exc)]
        # One by one, each read, rated and written anew: an item rated after one that
        # could not be written must not count on that one's effects.
        created = 0
        for item, _ in rated:
            ok, errors = self._bill(run_id, tenant_id, [item], usage, taxes, cutoff)
            created += ok
            failures.extend(errors)
        return created, failures

    def _write(
        self,
        run_id: str | None,
        tenant_id: str,
        rated: Sequence[tuple[BillingItem, RatingResult]],
        cutoff: datetime,
        invoice_ids: Sequence[str] | None = None,
    ) -> None:
        """The invoices, their lines and their ledger effects, in one transaction."""
        if not rated:
            return
        now = self._clock.now()
        invoices, lines, settled = [], [], []
        ids = new_ids("inv", len(rated)) if invoice_ids is None else invoice_ids
        for invoice_id, (item, result) in zip(ids, rated, strict=True):
            invoice = result.invoice
            invoices.append(
                invoice_row(invoice_id, tenant_id, run_id, item.customer_row_id, invoice, now)
            )
            lines.extend(line_rows(invoice_id, invoice, cutoff))
            if result.coupon_uses or result.wallet_debits or result.rollover_out:
                settled.append(Settled(invoice_id, item.subscription.id, result))
        with self._sessions() as session, session.begin():
            # Each invoice's copy of its customer's custom sections, read in the same
            # transaction (docs/invoice-custom-sections.md).
            copies = invoice_copies(session, tenant_id, {item.customer_row_id for item, _ in rated})
            sections = [
                row
                for invoice_id, (item, _) in zip(ids, rated, strict=True)
                for row in copy_tuples(invoice_id, copies[item.customer_row_id])
            ]
            insert_invoices(session, invoices, lines)
            bulk_insert(session, SECTION_COPIES, sections)
            apply_effects(session, tenant_id, settled, now)
