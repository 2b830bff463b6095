"""Revenue analytics over the ledger (docs/analytics.md): MRR and its movements, gross
revenue, collections, invoiced usage by metric, overdue balances.

Every figure is per currency (no conversion) and per UTC calendar month of a window of
whole months. Sums and counts are computed by the database, grouped by month and
currency; Python only puts the groups together (and, for the MRR movements, reads the
subscriptions of the customers whose subscriptions started or ended in the window).
Amounts are exact; the only rounding is MRR's, once, to the currency's minor unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from invoicing.catalog import get_customer
from invoicing.ledger_sql import month_of, sum_columns, sum_value, sum_width
from invoicing.models import (
    CreditNoteRow,
    InvoiceLineRow,
    InvoiceRow,
    PaymentRow,
    PlanRow,
    SubscriptionRow,
)
from rating.model import Interval, LineType
from rating.money import EXACT, ZERO, minor_units, ratio

MAX_MONTHS = 120

# Issued invoices that still stand: not drafts, not voided (UNCOLLECTIBLE was issued
# and billed; writing it off is not a credit note).
ISSUED = ("OPEN", "PAID", "OVERDUE", "UNCOLLECTIBLE")
# Wallet top-ups are prepaid money, not revenue: the invoices the wallet later pays
# carry their full totals.
PREPAID_TYPE = "credit"
# Credit notes that gave money back (a draft has given nothing, a void one took it back).
CREDITED = ("ISSUED", "APPLIED")
# Open balances past their due date.
UNPAID = ("OPEN", "OVERDUE")

# A plan's recurring fee times this is its fee over twelve months: MRR is kept in
# twelfths, so that quarterly, yearly and weekly fees add up exactly.
TWELFTHS: dict[str, Decimal] = {
    Interval.WEEKLY: Decimal(52),
    Interval.MONTHLY: Decimal(12),
    Interval.QUARTERLY: Decimal(4),
    Interval.YEARLY: Decimal(1),
}
_TWELVE = Decimal(12)


# -- the window and the scope ----------------------------------------------------------


@dataclass(frozen=True, order=True)
class Month:
    """A UTC calendar month."""

    year: int
    month: int

    @classmethod
    def of(cls, instant: datetime) -> Month:
        t = instant.astimezone(UTC)
        return cls(t.year, t.month)

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month (exclusive)."""
        return self.plus(1).start

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Window:
    """The months `first` … `last`, both included."""

    first: Month
    last: Month

    @property
    def months(self) -> list[Month]:
        count = (self.last.year - self.first.year) * 12 + self.last.month - self.first.month
        return [self.first.plus(i) for i in range(count + 1)]

    @property
    def start(self) -> datetime:
        return self.first.start

    @property
    def end(self) -> datetime:
        return self.last.end


def window(first: Month | None, last: Month | None, now: datetime) -> Window:
    """The window asked for: `last` defaults to the month of `now`, `first` to eleven
    months before `last` (a year of months); at most MAX_MONTHS months."""
    last = last or Month.of(now)
    first = first or last.plus(-11)
    if first > last:
        raise InvalidInput(f"from ({first}) is after to ({last})", code="invalid_range")
    found = Window(first, last)
    if len(found.months) > MAX_MONTHS:
        raise InvalidInput(
            f"the range {first} … {last} has more than {MAX_MONTHS} months", code="invalid_range"
        )
    return found


def due_window(first: Month | None, last: Month | None) -> Window:
    """A bound on due dates: either side may be open (any month up to 9998)."""
    first, last = first or Month(1970, 1), last or Month(9998, 12)
    if first > last:
        raise InvalidInput(f"from ({first}) is after to ({last})", code="invalid_range")
    return Window(first, last)


@dataclass(frozen=True)
class Scope:
    """Whose figures: a tenant's, in one currency or all, of one customer or all."""

    tenant_id: str
    currency: str | None = None
    customer_external_id: str | None = None


# -- what the queries answer -----------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A sum of one month and currency (and metric, for invoiced usage)."""

    month: str
    currency: str
    amount: Decimal
    count: int
    metric: str | None = None


@dataclass(frozen=True)
class Movements:
    """How the MRR of a month moved, per customer: new (from 0), expansion (up),
    contraction (down), churn (to 0); all ≥ 0, rounded each."""

    new: Decimal = ZERO
    expansion: Decimal = ZERO
    contraction: Decimal = ZERO
    churn: Decimal = ZERO


@dataclass(frozen=True)
class MrrFigure:
    """The MRR at the end of a month, its active subscriptions, and its movements."""

    month: str
    currency: str
    amount: Decimal
    count: int
    movements: Movements


@dataclass(frozen=True)
class Balance:
    """An overdue balance of one currency."""

    currency: str
    amount: Decimal
    count: int


# -- helpers ---------------------------------------------------------------------------


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _customer_id(session: Session, scope: Scope) -> str | None:
    """The ledger id of the scope's customer (None: every customer); NotFound if absent."""
    if scope.customer_external_id is None:
        return None
    return get_customer(session, scope.tenant_id, scope.customer_external_id).id


def _grouped(
    session: Session, query: Select[*tuple[Any, ...]], amount: Any, *, keys: int
) -> list[tuple[tuple[Any, ...], Decimal, int]]:
    """Run `query` (its first `keys` columns are the group) with an exact sum of `amount`
    and a count added; returns (group, sum, count) per group."""
    dialect = _dialect(session)
    width = sum_width(dialect)
    query = query.add_columns(*sum_columns(amount, dialect), func.count())
    rows = session.execute(query).all()
    return [
        (tuple(row[:keys]), sum_value(row[keys : keys + width]), int(row[keys + width]))
        for row in rows
    ]


def _every_month(
    win: Window, found: dict[tuple[str, ...], dict[str, tuple[Decimal, int]]], scope: Scope
) -> list[tuple[str, tuple[str, ...], Decimal, int]]:
    """Each month of the window for each series (currency, and metric) that has data, or
    for the asked currency even when it has none; missing months are 0."""
    series = set(found)
    if scope.currency and not series:
        series = {(scope.currency,)}
    out = []
    for key in sorted(series):
        by_month = found.get(key, {})
        for month in win.months:
            amount, count = by_month.get(str(month), (ZERO, 0))
            out.append((str(month), key, amount, count))
    return out


# -- gross revenue, collections, invoiced usage ----------------------------------------


def gross_revenue(session: Session, scope: Scope, win: Window) -> list[Figure]:
    """Totals (tax included) of the invoices issued in each month, less the credit notes
    issued in it; `count` is the number of invoices."""
    dialect = _dialect(session)
    customer = _customer_id(session, scope)
    month = month_of(InvoiceRow.issued_at, dialect)
    invoiced = (
        select(month, InvoiceRow.currency)
        .where(
            InvoiceRow.tenant_id == scope.tenant_id,
            InvoiceRow.issued_at >= win.start,
            InvoiceRow.issued_at < win.end,
            InvoiceRow.status.in_(ISSUED),
            InvoiceRow.type != PREPAID_TYPE,
        )
        .group_by(month, InvoiceRow.currency)
    )
    note_month = month_of(CreditNoteRow.issued_at, dialect)
    credited = (
        select(note_month, CreditNoteRow.currency)
        .join(InvoiceRow, InvoiceRow.id == CreditNoteRow.invoice_id)
        .where(
            CreditNoteRow.tenant_id == scope.tenant_id,
            CreditNoteRow.issued_at >= win.start,
            CreditNoteRow.issued_at < win.end,
            CreditNoteRow.status.in_(CREDITED),
            InvoiceRow.status.in_(ISSUED),
            InvoiceRow.type != PREPAID_TYPE,
        )
        .group_by(note_month, CreditNoteRow.currency)
    )
    if scope.currency:
        invoiced = invoiced.where(InvoiceRow.currency == scope.currency)
        credited = credited.where(CreditNoteRow.currency == scope.currency)
    if customer:
        invoiced = invoiced.where(InvoiceRow.customer_id == customer)
        credited = credited.where(CreditNoteRow.customer_id == customer)
    found: dict[tuple[str, ...], dict[str, tuple[Decimal, int]]] = defaultdict(dict)
    for (m, currency), amount, count in _grouped(session, invoiced, InvoiceRow.total, keys=2):
        found[(currency,)][m] = (amount, count)
    for (m, currency), amount, _ in _grouped(session, credited, CreditNoteRow.amount, keys=2):
        before, count = found[(currency,)].get(m, (ZERO, 0))
        found[(currency,)][m] = (EXACT.subtract(before, amount), count)
    return [Figure(m, key[0], a, c) for m, key, a, c in _every_month(win, found, scope)]


def invoice_collections(session: Session, scope: Scope, win: Window) -> list[Figure]:
    """Payments received on invoices in each month (by when they were recorded);
    `count` is the number of payments."""
    dialect = _dialect(session)
    customer = _customer_id(session, scope)
    month = month_of(PaymentRow.created_at, dialect)
    query = (
        select(month, PaymentRow.currency)
        .where(
            PaymentRow.tenant_id == scope.tenant_id,
            PaymentRow.created_at >= win.start,
            PaymentRow.created_at < win.end,
        )
        .group_by(month, PaymentRow.currency)
    )
    if scope.currency:
        query = query.where(PaymentRow.currency == scope.currency)
    if customer:
        query = query.join(InvoiceRow, InvoiceRow.id == PaymentRow.invoice_id).where(
            InvoiceRow.customer_id == customer
        )
    found: dict[tuple[str, ...], dict[str, tuple[Decimal, int]]] = defaultdict(dict)
    for (m, currency), amount, count in _grouped(session, query, PaymentRow.amount, keys=2):
        found[(currency,)][m] = (amount, count)
    return [Figure(m, key[0], a, c) for m, key, a, c in _every_month(win, found, scope)]


def invoiced_usage(session: Session, scope: Scope, win: Window) -> list[Figure]:
    """Usage fees (before discounts and tax) of the invoices issued in each month, per
    metric; `count` is the number of usage lines."""
    dialect = _dialect(session)
    customer = _customer_id(session, scope)
    month = month_of(InvoiceRow.issued_at, dialect)
    query = (
        select(month, InvoiceRow.currency, InvoiceLineRow.metric)
        .join(InvoiceLineRow, InvoiceLineRow.invoice_id == InvoiceRow.id)
        .where(
            InvoiceRow.tenant_id == scope.tenant_id,
            InvoiceRow.issued_at >= win.start,
            InvoiceRow.issued_at < win.end,
            InvoiceRow.status.in_(ISSUED),
            InvoiceLineRow.type == LineType.USAGE_FEE,
        )
        .group_by(month, InvoiceRow.currency, InvoiceLineRow.metric)
    )
    if scope.currency:
        query = query.where(InvoiceRow.currency == scope.currency)
    if customer:
        query = query.where(InvoiceRow.customer_id == customer)
    found: dict[tuple[str, ...], dict[str, tuple[Decimal, int]]] = defaultdict(dict)
    for (m, currency, metric), amount, count in _grouped(
        session, query, InvoiceLineRow.amount, keys=3
    ):
        found[(currency, metric or "")][m] = (amount, count)
    if not found:  # no metric to fill months for, even in an asked currency
        return []
    return [
        Figure(m, key[0], a, c, metric=key[1]) for m, key, a, c in _every_month(win, found, scope)
    ]


# -- overdue balances ------------------------------------------------------------------


def overdue_balances(
    session: Session, scope: Scope, now: datetime, win: Window | None = None
) -> list[Balance]:
    """What is still due on OPEN or OVERDUE invoices whose due date has passed at `now`
    (due in the window's months, when one is given), per currency."""
    customer = _customer_id(session, scope)
    query = (
        select(InvoiceRow.currency)
        .where(
            InvoiceRow.tenant_id == scope.tenant_id,
            InvoiceRow.status.in_(UNPAID),
            InvoiceRow.due_at < now,
        )
        .group_by(InvoiceRow.currency)
        .order_by(InvoiceRow.currency)
    )
    if win is not None:
        query = query.where(InvoiceRow.due_at >= win.start, InvoiceRow.due_at < win.end)
    if scope.currency:
        query = query.where(InvoiceRow.currency == scope.currency)
    if customer:
        query = query.where(InvoiceRow.customer_id == customer)
    rows = _grouped(session, query, InvoiceRow.amount_due, keys=1)
    found = [Balance(currency, amount, count) for (currency,), amount, count in rows]
    if scope.currency and not found:
        return [Balance(scope.currency, ZERO, 0)]
    return found


# -- MRR -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    currency: str
    interval: str
    base_fee: Decimal
    fixed: Decimal  # recurring fixed charges per period (amount × units)


def _plans(session: Session, scope: Scope) -> dict[str, _Plan]:
    """The tenant's plans (a catalog: few rows) with their recurring fees."""
    query = select(PlanRow).where(PlanRow.tenant_id == scope.tenant_id)
    if scope.currency:
        query = query.where(PlanRow.currency == scope.currency)
    plans = {}
    for row in session.execute(query).scalars():
        fixed = ZERO
        for charge in row.fixed_charges or []:
            if not charge.get("oneTime"):
                amount = EXACT.multiply(Decimal(charge["amount"]), Decimal(charge["units"]))
                fixed = EXACT.add(fixed, amount)
        plans[row.id] = _Plan(row.currency, row.interval, row.base_fee, fixed)
    return plans


def _twelfths(plan: _Plan, override: Any) -> Decimal:
    """Twelve months of a subscription's recurring fees (MRR × 12), exactly."""
    base = plan.base_fee if override is None else Decimal(str(override))
    return EXACT.multiply(EXACT.add(base, plan.fixed), TWELFTHS[plan.interval])


def _mrr_amount(twelfths: Decimal, currency: str) -> Decimal:
    return ratio(twelfths, _TWELVE, minor_units(currency))


def _override() -> Any:
    return SubscriptionRow.overrides["baseFee"].as_string()


def mrr(session: Session, scope: Scope, win: Window) -> list[MrrFigure]:
    """The MRR at the end of each month: recurring fees (base fee or its override, and
    recurring fixed charges) of the subscriptions running then, normalised to a month;
    `count` is those subscriptions. Usage is not recurring and not in MRR."""
    customer = _customer_id(session, scope)
    plans = _plans(session, scope)
    months = win.months
    # Running at the end of month M ⇔ start month ≤ M < end month (an end at the very
    # first instant of a month stops in the month before). So the subscriptions are
    # counted per (plan, override, start month, end month), one pass over the table,
    # and each group is added to the months it covers.
    dialect = _dialect(session)
    spans = (
        select(
            SubscriptionRow.plan_id,
            _override().label("base_fee"),
            month_of(SubscriptionRow.start_date, dialect).label("first"),
            month_of(SubscriptionRow.end_date, dialect).label("stop"),
        )
        .where(SubscriptionRow.tenant_id == scope.tenant_id)
        .where(SubscriptionRow.plan_id.in_(plans) if plans else false())
        .where(SubscriptionRow.start_date < win.end)
        .where(or_(SubscriptionRow.end_date.is_(None), SubscriptionRow.end_date >= months[0].end))
    )
    if customer:
        spans = spans.where(SubscriptionRow.customer_id == customer)
    sp = spans.subquery("spans")
    grouped = select(sp.c.plan_id, sp.c.base_fee, sp.c.first, sp.c.stop, func.count()).group_by(
        sp.c.plan_id, sp.c.base_fee, sp.c.first, sp.c.stop
    )
    labels = [str(m) for m in months]
    totals: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for plan_id, override, first, stop, count in session.execute(grouped).all():
        plan = plans[plan_id]
        add = EXACT.multiply(_twelfths(plan, override), Decimal(count))
        for month in labels:
            if first <= month and (stop is None or month < stop):
                key = (plan.currency, month)
                before, subs = totals.get(key, (ZERO, 0))
                totals[key] = (EXACT.add(before, add), subs + int(count))
    movements = _movements(session, scope, customer, plans, months)
    currencies = {c for c, _ in totals} | {c for c, _ in movements}
    if scope.currency and not currencies:
        currencies = {scope.currency}
    out = []
    for currency in sorted(currencies):
        for m in months:
            twelfths, count = totals.get((currency, str(m)), (ZERO, 0))
            moved = movements.get((currency, str(m)), (ZERO, ZERO, ZERO, ZERO))
            out.append(
                MrrFigure(
                    month=str(m),
                    currency=currency,
                    amount=_mrr_amount(twelfths, currency),
                    count=count,
                    movements=Movements(*(_mrr_amount(v, currency) for v in moved)),
                )
            )
    return out


def _movements(
    session: Session,
    scope: Scope,
    customer: str | None,
    plans: dict[str, _Plan],
    months: Sequence[Month],
) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal, Decimal]]:
    """(new, expansion, contraction, churn) in twelfths per (currency, month).

    A subscription's fee is constant over its life, so a customer's MRR moves only in
    a month where one of their subscriptions started or ended: only those customers'
    subscriptions are read, and each is compared between the two month ends."""
    if not plans:
        return {}
    start, end = months[0].plus(-1).end, months[-1].end
    starts_or_ends = or_(
        and_(SubscriptionRow.start_date >= start, SubscriptionRow.start_date < end),
        and_(SubscriptionRow.end_date >= start, SubscriptionRow.end_date < end),
    )
    movers = select(SubscriptionRow.customer_id).where(
        SubscriptionRow.tenant_id == scope.tenant_id, starts_or_ends
    )
    if customer:
        movers = movers.where(SubscriptionRow.customer_id == customer)
    rows = session.execute(
        select(
            SubscriptionRow.customer_id,
            SubscriptionRow.plan_id,
            _override(),
            SubscriptionRow.start_date,
            SubscriptionRow.end_date,
        ).where(
            SubscriptionRow.tenant_id == scope.tenant_id,
            SubscriptionRow.customer_id.in_(movers),
            SubscriptionRow.plan_id.in_(plans),
        )
    ).all()
    by_customer: dict[str, list[tuple[_Plan, Decimal, datetime, datetime | None]]] = defaultdict(
        list
    )
    for customer_id, plan_id, override, started, ended in rows:
        plan = plans[plan_id]
        by_customer[customer_id].append((plan, _twelfths(plan, override), started, ended))
    ends = {m: (m.plus(-1).end, m.end) for m in months}
    result: dict[tuple[str, str], list[Decimal]] = {}
    for subs in by_customer.values():
        for m in _event_months(subs, ends):
            before_end, after_end = ends[m]
            for currency, (before, after) in _customer_mrr(subs, before_end, after_end).items():
                if before == after:
                    continue
                slot = result.setdefault((currency, str(m)), [ZERO, ZERO, ZERO, ZERO])
                change = EXACT.subtract(after, before)
                if before == ZERO and after > ZERO:
                    slot[0] = EXACT.add(slot[0], after)
                elif after == ZERO and before > ZERO:
                    slot[3] = EXACT.add(slot[3], before)
                elif change > ZERO:
                    slot[1] = EXACT.add(slot[1], change)
                elif change < ZERO:
                    slot[2] = EXACT.subtract(slot[2], change)
    return {k: (v[0], v[1], v[2], v[3]) for k, v in result.items()}


def _running(started: datetime, ended: datetime | None, instant: datetime) -> bool:
    return started < instant and (ended is None or ended >= instant)


def _event_months(
    subs: Iterable[tuple[_Plan, Decimal, datetime, datetime | None]],
    ends: dict[Month, tuple[datetime, datetime]],
) -> list[Month]:
    """The window's months in which one of `subs` started or ended."""
    found = []
    for m, (before_end, after_end) in ends.items():
        for _plan, _fee, started, ended in subs:
            if before_end <= started < after_end or (
                ended is not None and before_end <= ended < after_end
            ):
                found.append(m)
                break
    return found


def _customer_mrr(
    subs: Iterable[tuple[_Plan, Decimal, datetime, datetime | None]],
    before_end: datetime,
    after_end: datetime,
) -> dict[str, tuple[Decimal, Decimal]]:
    """A customer's MRR (twelfths) per currency at two month ends."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for plan, fee, started, ended in subs:
        before, after = out.get(plan.currency, (ZERO, ZERO))
        if _running(started, ended, before_end):
            before = EXACT.add(before, fee)
        if _running(started, ended, after_end):
            after = EXACT.add(after, fee)
        out[plan.currency] = (before, after)
    return out
