"""Auto top-up rules of a wallet (Lago's recurring transaction rules), docs/wallets.md.

- `threshold`: when the balance, in credits, is at or below `thresholdCredits` after a
  change (a bill run's deductions, a settled top-up, a scheduler pass), the rule tops up
  `paidCredits` / `grantedCredits` once, and is disarmed; it is armed again only when the
  balance is seen above the threshold. So one crossing gives one top-up, however many
  passes or bill runs look at it (the wallet row is locked while a rule is judged).
- `interval` (`weekly` | `monthly`): at the first scheduler pass of each calendar period
  (UTC weeks from Monday, months) after the rule was set, one top-up; the period start it
  fired for is kept, so a second pass in the same period does nothing.

Each rule's state lives in the wallet's `recurring_rules` JSON next to its settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ValidationFailed
from invoicing.models import WalletRow
from invoicing.specs import WalletRuleSpec
from rating.model import Interval
from rating.money import round_money
from rating.periods import period_containing, zone_of

TRIGGERS = ("threshold", "interval")
INTERVALS = {"weekly": Interval.WEEKLY, "monthly": Interval.MONTHLY}
# A paid top-up's credit invoice made by a rule is due after the customer's terms, or
# this many days when the customer has none (the process default is not known here).
DEFAULT_DUE_DAYS = 30


def _iso(value: datetime) -> str:
    return value.isoformat()


def rules_json(
    rules: Sequence[WalletRuleSpec], currency: str, now: datetime | None
) -> list[dict[str, Any]] | None:
    """Checked rules as the wallet stores them, armed and never fired; None for none."""
    if not rules:
        return None
    out = []
    for rule in rules:
        if rule.trigger not in TRIGGERS:
            raise ValidationFailed(f"rules: trigger must be one of {list(TRIGGERS)}")
        amounts = (("paidCredits", rule.paid_credits), ("grantedCredits", rule.granted_credits))
        for what, value in amounts:
            if value < 0 or value != round_money(value, currency):
                raise ValidationFailed(f"rules: {what} must be ≥ 0 with {currency}'s decimals")
        if rule.paid_credits <= 0 and rule.granted_credits <= 0:
            raise ValidationFailed("rules: a rule tops up paidCredits or grantedCredits above 0")
        item: dict[str, Any] = {
            "trigger": rule.trigger,
            "paidCredits": format(rule.paid_credits, "f"),
            "grantedCredits": format(rule.granted_credits, "f"),
        }
        if rule.trigger == "threshold":
            if rule.threshold_credits is None or rule.threshold_credits < 0:
                raise ValidationFailed("rules: a threshold rule needs thresholdCredits ≥ 0")
            item |= {"thresholdCredits": format(rule.threshold_credits, "f"), "armed": True}
        else:
            if rule.interval not in INTERVALS:
                raise ValidationFailed(f"rules: interval must be one of {sorted(INTERVALS)}")
            if now is None:
                raise ValueError("an interval rule needs the time it was set")
            item |= {"interval": rule.interval, "since": _iso(now), "firedFor": None}
        out.append(item)
    return out


def _locked(session: Session, wallet_id: str) -> WalletRow | None:
    return session.execute(
        select(WalletRow)
        .where(WalletRow.id == wallet_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _top_up(session: Session, wallet: WalletRow, rule: dict[str, Any], now: datetime) -> None:
    from invoicing.wallets import fund

    fund(
        session,
        wallet.tenant_id,
        wallet.id,
        paid=Decimal(rule["paidCredits"]),
        granted=Decimal(rule["grantedCredits"]),
        now=now,
        due_days=DEFAULT_DUE_DAYS,
        source=rule["trigger"],
    )


def _balance_credits(wallet: WalletRow) -> Decimal:
    return wallet.balance / wallet.rate_amount


def _judge_thresholds(session: Session, wallet: WalletRow, now: datetime) -> int:
    rules = [dict(r) for r in wallet.recurring_rules or []]
    fired = 0
    for i, rule in enumerate(rules):
        if rule["trigger"] != "threshold" or wallet.status != "active":
            continue
        threshold = Decimal(rule["thresholdCredits"])
        if _balance_credits(wallet) > threshold:
            rule["armed"] = True
            continue
        if not rule["armed"]:
            continue
        rule["armed"] = False
        # Stored before the top-up, so that what the top-up changes sees the rule fired.
        wallet.recurring_rules = [*rules[:i], rule, *rules[i + 1 :]]
        session.flush()
        _top_up(session, wallet, rule, now)
        fired += 1
        # A granted top-up that lifts the balance over the threshold arms the rule again.
        rule["armed"] = _balance_credits(wallet) > threshold
    wallet.recurring_rules = rules
    return fired


def after_balance_change(
    session: Session, tenant_id: str, wallet_ids: Iterable[str], now: datetime
) -> int:
    """Judge the threshold rules of these wallets on their balances now (in the caller's
    transaction); the number of top-ups made."""
    fired = 0
    for wallet_id in sorted(set(wallet_ids)):
        wallet = _locked(session, wallet_id)
        if wallet is None or wallet.tenant_id != tenant_id or not wallet.recurring_rules:
            continue
        fired += _judge_thresholds(session, wallet, now)
    session.flush()
    return fired


def run_rules(session: Session, now: datetime) -> int:
    """The scheduler's pass over every active wallet with rules: due interval top-ups,
    then thresholds; the number of top-ups made. Idempotent at the same `now`."""
    # A wallet without rules may hold SQL NULL or JSON null: both are skipped unlocked.
    ids = [
        wallet_id
        for wallet_id, rules in session.execute(
            select(WalletRow.id, WalletRow.recurring_rules)
            .where(WalletRow.status == "active", WalletRow.recurring_rules.is_not(None))
            .order_by(WalletRow.id)
        )
        if rules
    ]
    fired = 0
    for wallet_id in ids:
        wallet = _locked(session, wallet_id)
        if wallet is None or wallet.status != "active" or not wallet.recurring_rules:
            continue
        rules = [dict(r) for r in wallet.recurring_rules]
        for i, rule in enumerate(rules):
            if rule["trigger"] != "interval":
                continue
            # The customer's local week, month …: a monthly top-up at its local 1st.
            zone = zone_of(wallet.customer.timezone)
            start = period_containing(INTERVALS[rule["interval"]], now, zone).start
            since = datetime.fromisoformat(rule["since"])
            if start <= since or rule["firedFor"] == _iso(start):
                continue
            rule["firedFor"] = _iso(start)
            wallet.recurring_rules = [*rules[:i], rule, *rules[i + 1 :]]
            session.flush()
            _top_up(session, wallet, rule, now)
            fired += 1
        wallet.recurring_rules = rules
        fired += _judge_thresholds(session, wallet, now)
    session.flush()
    return fired
