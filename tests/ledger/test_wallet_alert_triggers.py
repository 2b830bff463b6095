"""Wallet-balance triggers recorded in a bill run's transaction, on both ledgers: each
threshold once a month, the second attempt a no-op that does not fail the transaction
(INSERT … ON CONFLICT DO NOTHING), with exactly one alert.triggered event."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from invoicing.alerts import AlertSpec, ThresholdSpec, create_alert, record_wallet_triggers
from invoicing.db import transaction
from invoicing.models import AlertTriggerRow, DomainEventRow
from invoicing.specs import WalletSpec
from invoicing.wallets import create_wallet
from tests.ledger import new_tenant

pytestmark = pytest.mark.ledger

NOW = datetime(2026, 11, 1, 6, tzinfo=UTC)


def test_a_threshold_fires_once_a_month(factory: sessionmaker[Session]) -> None:
    tenant, _ = new_tenant(factory)
    with transaction(factory) as session:
        wallet = create_wallet(session, tenant, WalletSpec("acme", credits=Decimal("20")))
        alert = create_alert(
            session,
            tenant,
            AlertSpec("wallet_balance", None, wallet.id, None, None, None,
                      (ThresholdSpec(Decimal("15")), ThresholdSpec(Decimal("5")))),
            NOW,
        )  # fmt: skip
        wallet_id, alert_id = wallet.id, alert.id
    with transaction(factory) as session:
        assert record_wallet_triggers(session, tenant, {wallet_id: Decimal("14")}, NOW) == 1
    with transaction(factory) as session:  # the same month again: nothing new, no error
        assert record_wallet_triggers(session, tenant, {wallet_id: Decimal("12")}, NOW) == 0
        # Lower still: the 5 threshold is new.
        assert record_wallet_triggers(session, tenant, {wallet_id: Decimal("4.5")}, NOW) == 1
    later = datetime(2026, 12, 1, 6, tzinfo=UTC)
    with transaction(factory) as session:  # a new month: both again
        assert record_wallet_triggers(session, tenant, {wallet_id: Decimal("4")}, later) == 2
    with factory() as session:
        rows = session.execute(
            select(
                AlertTriggerRow.threshold, AlertTriggerRow.value, AlertTriggerRow.period_start
            ).where(AlertTriggerRow.alert_id == alert_id)
        ).all()
        assert sorted(((t, v, p.month) for t, v, p in rows), key=lambda r: (r[2], -r[0])) == [
            (Decimal("15"), Decimal("14"), 11),
            (Decimal("5"), Decimal("4.5"), 11),
            (Decimal("15"), Decimal("4"), 12),
            (Decimal("5"), Decimal("4"), 12),
        ]
        events = session.execute(
            select(func.count()).where(
                DomainEventRow.tenant_id == tenant, DomainEventRow.type == "alert.triggered"
            )
        ).scalar()
        assert events == 4
