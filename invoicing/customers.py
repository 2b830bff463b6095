"""Customer search, metadata and deletion (docs/coupons-taxes-customers.md).

Metadata is the tenant's own key/value text pairs, bounded as Stripe bounds them (50
keys, keys up to 40 characters, values up to 500). Deleting a customer is soft: the row
stays for its invoices, credit notes and history, every lookup by externalId stops
finding it, and its externalId stays taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, ValidationFailed
from invoicing import subscriptions, wallets
from invoicing.billing import BillRunner
from invoicing.catalog import country_code, currency_code, get_customer, terminate_subscription
from invoicing.models import AppliedCouponRow, CustomerRow, SubscriptionRow, WalletRow
from invoicing.pages import Page, keyset_page

MAX_KEYS = 50
MAX_KEY = 40
MAX_VALUE = 500


def _checked(metadata: Mapping[str, Any]) -> dict[str, str]:
    if len(metadata) > MAX_KEYS:
        raise ValidationFailed(f"metadata holds at most {MAX_KEYS} keys")
    result: dict[str, str] = {}
    for key, value in metadata.items():
        if not 1 <= len(key) <= MAX_KEY or "[" in key or "]" in key:
            raise ValidationFailed(
                f"metadata key {key[:50]!r}: 1 to {MAX_KEY} characters, no brackets"
            )
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise ValidationFailed(f"metadata[{key}]: a text of at most {MAX_VALUE} characters")
        result[key] = value
    return result


def set_metadata(row: CustomerRow, metadata: Mapping[str, Any]) -> None:
    """Replace the customer's metadata (creation)."""
    row.meta = _checked(metadata)


def merge_metadata(row: CustomerRow, changes: Mapping[str, Any]) -> None:
    """PATCH: the keys sent are set, a key sent as null is removed, the others stay."""
    merged = dict(row.meta or {})
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    row.meta = _checked(merged)


def ensure_reusable(session: Session, tenant_id: str, external_id: str) -> None:
    """A deleted customer's externalId is not given to a new customer (409)."""
    deleted = session.execute(
        select(CustomerRow.id).where(
            CustomerRow.tenant_id == tenant_id,
            CustomerRow.external_id == external_id,
            CustomerRow.deleted_at.is_not(None),
        )
    ).first()
    if deleted is not None:
        raise Conflict(
            f"customer {external_id!r} was deleted; its externalId stays with its invoices "
            "and cannot be reused",
            code="customer_deleted",
        )


def search_customers(
    session: Session,
    tenant_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    country: str | None = None,
    currency: str | None = None,
    metadata: Mapping[str, str] | None = None,
    text: str | None = None,
) -> Page[CustomerRow]:
    """The tenant's live customers, newest first, one page; every filter given must hold
    (`text`: a case-insensitive part of the name, email or externalId)."""
    query = select(CustomerRow).where(
        CustomerRow.tenant_id == tenant_id, CustomerRow.deleted_at.is_(None)
    )
    if country is not None:
        query = query.where(CustomerRow.country == country_code(country))
    if currency is not None:
        query = query.where(CustomerRow.currency == currency_code(currency))
    for key, value in (metadata or {}).items():
        query = query.where(CustomerRow.meta[key].as_string() == value)
    if text is not None and text.strip():
        needle = text.strip().lower()
        query = query.where(
            or_(
                func.lower(CustomerRow.name).contains(needle, autoescape=True),
                func.lower(CustomerRow.email).contains(needle, autoescape=True),
                func.lower(CustomerRow.external_id).contains(needle, autoescape=True),
            )
        )
    return keyset_page(session, query, CustomerRow, limit, cursor)


@dataclass(frozen=True)
class Deletion:
    terminated: int  # subscriptions ended by the deletion
    invoice_ids: list[str]  # the final invoices issued


def delete(
    sessions: sessionmaker[Session],
    runner: BillRunner,
    tenant_id: str,
    external_id: str,
    now: datetime,
    *,
    final_invoice: bool = True,
) -> Deletion:
    """Delete a customer as Lago does: each running subscription is terminated now
    through the subscription terminate path, with its final invoice of [period start,
    now) issued at once (`final_invoice`; else its period's bill run bills it), while
    the customer's coupons still apply; then the customer is soft-deleted
    (`delete_customer`). A final invoice that fails leaves its period to the bill run."""
    with sessions() as session:
        row = get_customer(session, tenant_id, external_id)  # 404 before anything ends
        running = list(
            session.execute(
                select(SubscriptionRow.id).where(
                    SubscriptionRow.customer_id == row.id,
                    SubscriptionRow.status != "terminated",
                    SubscriptionRow.start_date <= now,  # a future start just ends
                )
            ).scalars()
        )
    invoice_ids: list[str] = []
    ended = 0
    for subscription_id in running:
        try:
            done = subscriptions.terminate(
                sessions,
                runner,
                tenant_id,
                subscription_id,
                at=None,
                final_invoice=final_invoice,
                credit_unused=False,
                now=now,
            )
        except Conflict:  # terminated meanwhile by another request
            continue
        ended += 1
        invoice_ids.extend(done.invoice_ids)
    with sessions() as session, session.begin():
        ended += delete_customer(session, tenant_id, external_id, now)
    return Deletion(ended, invoice_ids)


def delete_customer(session: Session, tenant_id: str, external_id: str, now: datetime) -> int:
    """Soft-delete a customer: its subscriptions still running end now (billed up to
    now by their period close, as any termination), a scheduled later end is brought to
    now, its active coupons stop and its active wallets are terminated; returns how
    many subscriptions it ended."""
    row = get_customer(session, tenant_id, external_id)
    subscription_ids = (
        session.execute(
            select(SubscriptionRow.id).where(
                SubscriptionRow.customer_id == row.id, SubscriptionRow.status != "terminated"
            )
        )
        .scalars()
        .all()
    )
    for subscription_id in subscription_ids:
        terminate_subscription(session, tenant_id, subscription_id, now=now)
    scheduled = session.execute(
        select(SubscriptionRow).where(
            SubscriptionRow.customer_id == row.id,
            SubscriptionRow.status == "terminated",
            SubscriptionRow.end_date > now,
        )
    ).scalars()
    for later in scheduled:
        # A terminate with a later `at`: a deleted customer is not billed past its deletion.
        later.terminated_at = now
        later.end_date = max(now, later.start_date)
    coupons = (
        session.execute(
            select(AppliedCouponRow).where(
                AppliedCouponRow.customer_id == row.id, AppliedCouponRow.status == "active"
            )
        )
        .unique()
        .scalars()
        .all()
    )
    for applied in coupons:
        applied.status = "removed"
    # Its wallets end as a terminate would end them (the balance forfeited, pending
    # paid top-ups cancelled): no recurring top-up may invoice a deleted customer.
    active_wallets = session.execute(
        select(WalletRow.id)
        .where(WalletRow.customer_id == row.id, WalletRow.status == "active")
        .order_by(WalletRow.id)
    ).scalars()
    for wallet_id in list(active_wallets):
        wallets.close_wallet(session, tenant_id, wallet_id, now)
    row.deleted_at = now
    session.flush()
    return len(subscription_ids)
