"""The scheduler's wallet job: expire wallets whose expiresAt has come, then run the
auto top-up rules (invoicing/wallet_rules.py). Idempotent at the same instant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from invoicing.wallet_rules import run_rules
from invoicing.wallets import expire_due


def wallet_pass(sessions: sessionmaker[Session], at: datetime) -> list[str]:
    """One pass as of `at`; the lines a scheduler pass prints (none when idle)."""
    with sessions() as session, session.begin():
        expired = expire_due(session, at)
    with sessions() as session, session.begin():
        topped = run_rules(session, at)
    lines = []
    if expired:
        lines.append(f"wallets: {expired} expired")
    if topped:
        lines.append(f"wallets: {topped} auto top-ups")
    return lines
