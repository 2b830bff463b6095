"""An in-memory usage source (the bill run's port), and ledger helpers for its tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from rating.model import Group, MeteredQuantity, Period, UsageCharge
from streams.billing_usage import UsageRequest


@dataclass(frozen=True)
class StoredEvent:
    customer: str
    metric: str
    ts: datetime
    quantity: Decimal
    ingested_at: datetime


class InMemoryUsage:
    """Sums of stored quantities per customer and metric (count/sum semantics)."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.requests = 0

    def add(
        self, customer: str, metric: str, ts: datetime, quantity: str, ingested_at: datetime
    ) -> None:
        self.events.append(StoredEvent(customer, metric, ts, Decimal(quantity), ingested_at))

    def _matching(
        self, customer: str, metric: str, active: Period, through: datetime | None = None
    ) -> list[StoredEvent]:
        return [
            e
            for e in self.events
            if e.customer == customer
            and e.metric == metric
            and active.start <= e.ts < active.end
            and (through is None or e.ingested_at <= through)
        ]

    def metered_quantities(
        self, tenant_id: str, requests: Sequence[UsageRequest]
    ) -> Mapping[str, tuple[MeteredQuantity, ...]]:
        self.requests += 1
        out = {}
        for request in requests:
            rows = []
            for charge in request.charges:
                found = self._matching(request.customer_id, charge.metric.code, request.active)
                if found:
                    rows.append(
                        MeteredQuantity(
                            charge_id=charge.id,
                            quantity=sum((e.quantity for e in found), Decimal(0)),
                            event_count=len(found),
                        )
                    )
            out[request.key] = tuple(rows)
        return out

    def bill_run_usage(self, tenant_id: str) -> _RunReader:
        return _RunReader(self, tenant_id)

    def customers_with_late_events(
        self, tenant_id: str, before: datetime, ingested_after: datetime
    ) -> set[str]:
        return {e.customer for e in self.events if e.ts < before and e.ingested_at > ingested_after}

    def charge_quantities(
        self,
        tenant_id: str,
        customer_id: str,
        charge: UsageCharge,
        active: Period,
        period: Period,
        ingested_through: datetime,
    ) -> Mapping[Group, Decimal]:
        found = self._matching(customer_id, charge.metric.code, active, ingested_through)
        return {(): sum((e.quantity for e in found), Decimal(0))} if found else {}


class _RunReader:
    """A bill run's reader over the in-memory events (nothing to stage)."""

    def __init__(self, usage: InMemoryUsage, tenant_id: str) -> None:
        self._usage = usage
        self._tenant_id = tenant_id
        self.closed = False

    def __enter__(self) -> _RunReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def metered_quantities(
        self, requests: Sequence[UsageRequest]
    ) -> Mapping[str, tuple[MeteredQuantity, ...]]:
        return self._usage.metered_quantities(self._tenant_id, requests)
