"""A progressive-billing invoice, issued by the stream when usage crosses a threshold,
carries the customer's invoice custom sections like every invoice, and keeps the copy
it was finalized with (docs/invoice-custom-sections.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.test_progressive_billing import _calls, _progressive, _setup
from tests.helpers.scenarios import send

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def test_a_progressive_invoice_carries_and_keeps_its_sections(
    stack: Any, travel_clock: Any
) -> None:
    travel_clock.travel_to(datetime(2026, 10, 20, 12, tzinfo=UTC))
    c = stack.tenant("progressive-sections")
    body = {"code": "legal", "name": "Legal", "details": "v1", "appliesToAll": True}
    c.ok("POST", "/invoice-custom-sections", json=body)
    _setup(c, thresholds=[{"amount": "10"}])
    send(c, _calls(25))  # 12.50 EUR: the 10 threshold
    [invoice] = _progressive(c, 1)
    assert invoice["status"] == "OPEN"
    assert invoice["customSections"] == [{"code": "legal", "displayName": "Legal", "details": "v1"}]
    c.ok("PATCH", "/invoice-custom-sections/legal", json={"details": "v2"})
    again = c.ok("GET", f"/invoices/{invoice['id']}")
    assert again["customSections"] == invoice["customSections"]
