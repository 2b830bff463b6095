"""Invoice numbers under concurrency: no gaps, no duplicates, one sequence per tenant.

Every finalization runs in its own thread, session and transaction
(invoicing.db.transaction). SQLite serializes writers with BEGIN IMMEDIATE; PostgreSQL
with the row locks of SELECT … FOR UPDATE and UPDATE … RETURNING.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict
from invoicing import invoices
from invoicing.db import transaction
from invoicing.models import InvoiceRow, InvoiceSequence
from tests.helpers.dates import at
from tests.ledger import drafts, new_tenant

NOW = at(2026, 11, 3)

pytestmark = pytest.mark.ledger

THREADS = 8
T = TypeVar("T")


def _all_at_once(tasks: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run the tasks on THREADS threads, released together; results or exceptions."""
    go = threading.Event()

    def run(task: Callable[[], T]) -> T | BaseException:
        go.wait(10)
        try:
            return task()
        except BaseException as exc:  # reported to the test
            return exc

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(run, task) for task in tasks]
        go.set()
        return [f.result(timeout=120) for f in futures]


def _finalizer(factory: sessionmaker[Session], tenant: str, invoice_id: str) -> Callable[[], str]:
    def finalize() -> str:
        with transaction(factory) as session:
            row = invoices.finalize(session, tenant, invoice_id, due_days=30, now=NOW)
            return str(row.number)

    return finalize


def _numbers(factory: sessionmaker[Session], tenant: str) -> dict[str, str | None]:
    with factory() as session:
        rows = session.execute(
            select(InvoiceRow.id, InvoiceRow.number).where(InvoiceRow.tenant_id == tenant)
        ).all()
        return {ident: number for ident, number in rows}


def _next_value(factory: sessionmaker[Session], tenant: str) -> int:
    with factory() as session:
        row = session.get(InvoiceSequence, tenant)
        assert row is not None
        return row.next_value


def _expected(count: int) -> list[str]:
    return [f"INV-{n:06d}" for n in range(1, count + 1)]


def _no_errors(results: list[Any]) -> list[Any]:
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise AssertionError(f"{len(errors)} finalizations failed, first: {errors[0]!r}")
    return results


def test_thirty_concurrent_finalizations_number_1_to_30(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    ids = drafts(factory, tenant, customer, 30)

    results = _no_errors(_all_at_once([_finalizer(factory, tenant, i) for i in ids]))

    assert sorted(results) == _expected(30)
    stored = _numbers(factory, tenant)
    assert sorted(n for n in stored.values() if n) == _expected(30)
    assert {i: stored[i] for i in ids} == dict(zip(ids, results, strict=True))
    assert _next_value(factory, tenant) == 31


def test_two_tenants_have_independent_sequences(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant_a, customer_a = new_tenant(factory, "a")
    tenant_b, customer_b = new_tenant(factory, "b")
    tasks = [_finalizer(factory, tenant_a, i) for i in drafts(factory, tenant_a, customer_a, 18)]
    tasks += [_finalizer(factory, tenant_b, i) for i in drafts(factory, tenant_b, customer_b, 12)]
    random.Random(7).shuffle(tasks)

    _no_errors(_all_at_once(tasks))

    assert sorted(n for n in _numbers(factory, tenant_a).values() if n) == _expected(18)
    assert sorted(n for n in _numbers(factory, tenant_b).values() if n) == _expected(12)
    assert (_next_value(factory, tenant_a), _next_value(factory, tenant_b)) == (19, 13)


def test_concurrent_finalizations_of_one_invoice_take_one_number(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    [invoice_id] = drafts(factory, tenant, customer, 1)

    results = _all_at_once([_finalizer(factory, tenant, invoice_id) for _ in range(THREADS)])

    assert [r for r in results if isinstance(r, str)] == ["INV-000001"]
    others = [r for r in results if not isinstance(r, str)]
    assert len(others) == THREADS - 1
    assert all(isinstance(r, Conflict) for r in others), others
    assert _next_value(factory, tenant) == 2


def test_a_rolled_back_finalization_leaves_no_gap(
    factory: sessionmaker[Session], locking: None
) -> None:
    tenant, customer = new_tenant(factory)
    first, second = drafts(factory, tenant, customer, 2)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(factory) as session:
        assert (
            invoices.finalize(session, tenant, first, due_days=30, now=NOW).number == "INV-000001"
        )
        raise Boom

    assert _numbers(factory, tenant) == {first: None, second: None}
    assert _finalizer(factory, tenant, second)() == "INV-000001"
    assert _finalizer(factory, tenant, first)() == "INV-000002"


def test_next_number_under_concurrency(factory: sessionmaker[Session]) -> None:
    """The sequence itself (no invoice lock involved): 30 takes from 8 threads."""
    tenant_a, _ = new_tenant(factory, "a")
    tenant_b, _ = new_tenant(factory, "b")

    def taker(tenant: str) -> Callable[[], tuple[str, str]]:
        def take() -> tuple[str, str]:
            with transaction(factory) as session:
                return tenant, invoices.next_number(session, tenant)

        return take

    tasks = [taker(tenant_a) for _ in range(30)] + [taker(tenant_b) for _ in range(10)]
    random.Random(3).shuffle(tasks)
    results = _no_errors(_all_at_once(tasks))

    assert sorted(n for t, n in results if t == tenant_a) == _expected(30)
    assert sorted(n for t, n in results if t == tenant_b) == _expected(10)
    assert (_next_value(factory, tenant_a), _next_value(factory, tenant_b)) == (31, 11)
