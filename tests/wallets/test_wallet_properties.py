"""Properties of the wallet ledger: whatever granted top-ups at whatever rate, the
balance is the sum of the top-ups each rounded once, and a termination forfeits exactly
it, funded to the cent by what was left of each top-up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.db import transaction
from invoicing.specs import WalletSpec
from invoicing.wallets import close_wallet, create_wallet, credit_value, fund, list_transactions
from rating.money import round_money
from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

credits = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10_000), places=2)
rates = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(50), places=3)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rate=rates, top_ups=st.lists(credits, min_size=1, max_size=5))
def test_termination_forfeits_exactly_the_balance(
    api: ApiClient, rate: Decimal, top_ups: list[Decimal]
) -> None:
    if api.get("/customers/acme").status_code == 404:
        api.customer("acme")
    now = api.clock.now()
    with transaction(api.runtime.sessions) as session:
        wallet = create_wallet(session, api.tenant_id, WalletSpec("acme", rate_amount=rate))
        expected = Decimal(0)
        for c in top_ups:
            value = credit_value(c, rate, "USD")
            assert value == round_money(c * rate, "USD")
            if value <= 0:
                continue
            fund(session, api.tenant_id, wallet.id, granted=c, now=now)
            expected += value
        assert wallet.balance == expected
        if expected == 0:
            return
        close_wallet(session, api.tenant_id, wallet.id, now)
        ledger = list_transactions(session, api.tenant_id, wallet.id)
        [forfeit] = [t for t in ledger if t.kind == "forfeit"]
        assert forfeit.amount == expected
        assert sum(Decimal(p["amount"]) for p in forfeit.funding) == expected
        assert all(t.remaining == 0 for t in ledger)
