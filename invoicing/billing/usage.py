"""What a bill run needs of usage (the port); `streams.usage_store.UsageStore` is the
ClickHouse adapter, tests use an in-memory one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, Self

from rating.model import Group, MeteredQuantity, Period, UsageCharge
from streams.billing_usage import UsageRequest

__all__ = ["BillRunReader", "UsageRequest", "UsageSource"]


class BillRunReader(Protocol):
    """The usage of one bill run, asked chunk after chunk; closed when the run ends
    (it may hold a staged copy of the tenant's events)."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def metered_quantities(
        self, requests: Sequence[UsageRequest]
    ) -> Mapping[str, tuple[MeteredQuantity, ...]]:
        """`UsageSource.metered_quantities` for one chunk of the run's tenant."""
        ...


class UsageSource(Protocol):
    def bill_run_usage(self, tenant_id: str) -> BillRunReader:
        """A reader for one bill run of the tenant."""
        ...

    def metered_quantities(
        self, tenant_id: str, requests: Sequence[UsageRequest]
    ) -> Mapping[str, tuple[MeteredQuantity, ...]]:
        """Exact quantities of every request's charges, by request key (absent: none)."""
        ...

    def customers_with_late_events(
        self, tenant_id: str, before: datetime, ingested_after: datetime
    ) -> set[str]:
        """External ids of customers with events timed before `before` but stored after
        `ingested_after`: the only ones that can have late usage."""
        ...

    def charge_quantities(
        self,
        tenant_id: str,
        customer_id: str,
        charge: UsageCharge,
        active: Period,
        period: Period,
        ingested_through: datetime,
    ) -> Mapping[Group, Decimal]:
        """One customer's quantity per group of one charge over `active`, counting only
        events stored up to `ingested_through`."""
        ...
