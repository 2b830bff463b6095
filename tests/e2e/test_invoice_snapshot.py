"""Every invoice the billing scenarios produce, compared with a committed snapshot.

The scenarios (tests/e2e/scenarios/) assert the lines they are about; this test
runs them all again, each in fresh tenants, and compares *every* invoice they leave
behind — all lines and totals, normalised to drop ids and wall-clock timestamps — with
tests/e2e/snapshots/invoices.json. A refactor of the bill run or of the money code must
leave that file unchanged. After an intended change of billing behaviour, regenerate it
with `METERLINE_UPDATE_SNAPSHOTS=1 pytest tests/e2e/test_invoice_snapshot.py` and review
the diff.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.e2e.scenarios import (
    test_aggregations,
    test_discounts_and_wallets,
    test_lifecycle,
    test_pricing_models,
    test_stages,
    test_subscriptions,
    test_taxes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]

SNAPSHOT = Path(__file__).parent / "snapshots" / "invoices.json"
UPDATE = os.environ.get("METERLINE_UPDATE_SNAPSHOTS") == "1"

SCENARIO_MODULES: tuple[ModuleType, ...] = (
    test_pricing_models,
    test_aggregations,
    test_stages,
    test_discounts_and_wallets,
    test_taxes,
    test_subscriptions,
    test_lifecycle,
)

INVOICE_FIELDS = (
    "customerId", "number", "status", "currency", "periodStart", "periodEnd",
    "subtotal", "discountTotal", "taxTotal", "creditTotal", "total", "amountPaid", "amountDue",
)  # fmt: skip
LINE_FIELDS = (
    "type", "description", "metric", "group", "quantity", "unitAmount", "amount",
    "discountAmount", "taxRate", "taxAmount", "periodStart", "periodEnd",
)  # fmt: skip


# What a scenario may take besides the stack: the travelling clock.
SCENARIO_PARAMETERS = (["stack"], ["stack", "travel_clock"])


def scenarios() -> Iterator[tuple[str, Callable[..., None]]]:
    """Every scenario function (a `test_*` taking `stack`, and perhaps `travel_clock`),
    by name."""
    for module in SCENARIO_MODULES:
        for name, fn in sorted(vars(module).items()):
            if not (name.startswith("test_") and inspect.isfunction(fn)):
                continue
            if list(inspect.signature(fn).parameters) in SCENARIO_PARAMETERS:
                yield name, fn


class RecordingStack:
    """The session stack, remembering the tenants a scenario creates."""

    def __init__(self, stack: Any) -> None:
        self._stack = stack
        self.tenants: list[Any] = []

    def tenant(self, name: str = "test") -> Any:
        client = self._stack.tenant(name)
        self.tenants.append(client)
        return client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack, name)


def normalised(inv: dict[str, Any]) -> dict[str, Any]:
    body = {k: inv[k] for k in INVOICE_FIELDS}
    body["lines"] = [{k: ln[k] for k in LINE_FIELDS} for ln in inv["lines"]]
    return body


def tenant_invoices(client: Any) -> list[dict[str, Any]]:
    """All the tenant's invoices, normalised, ordered by customer, period, then content."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = client.ok("GET", "/invoices", params=params)
        rows += page["data"]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    full = [normalised(client.ok("GET", f"/invoices/{r['id']}")) for r in rows]
    return sorted(
        full,
        key=lambda i: (i["customerId"], i["periodStart"], i["periodEnd"], json.dumps(i)),
    )


def test_every_scenario_invoice_matches_the_snapshot(stack, travel_clock):
    found: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for name, scenario in scenarios():
        recording = RecordingStack(stack)
        wants_clock = "travel_clock" in inspect.signature(scenario).parameters
        try:
            scenario(recording, travel_clock) if wants_clock else scenario(recording)
        except AssertionError as exc:  # keep going: the snapshot diff tells more
            failures[name] = str(exc).splitlines()[0] if str(exc) else "AssertionError"
        finally:
            travel_clock.reset()
        found[name] = [inv for client in recording.tenants for inv in tenant_invoices(client)]
    assert len(found) >= 35, sorted(found)
    text = json.dumps(found, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if UPDATE:
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert sorted(found) == sorted(expected), "the set of scenarios changed"
    changed = [name for name in expected if found[name] != expected[name]]
    if changed:
        first = changed[0]
        raise AssertionError(
            f"invoices differ from {SNAPSHOT.name} in {changed}; {first}:\n"
            f"expected {json.dumps(expected[first], indent=1)}\n"
            f"found {json.dumps(found[first], indent=1)}"
        )
    assert not failures, f"scenario assertions failed: {failures}"
