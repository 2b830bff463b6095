"""Draft refresh: re-rate a DRAFT invoice with the latest usage and ledger state.

The same rating path and row writer as the bill run (`invoicing.billing`): the draft
gives back what it took (coupons, wallets, rollover), is rated again with its
subscription's context read now, and gets the new lines, totals and effects, all in
the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.clock import SYSTEM_CLOCK, Clock
from core.errors import Conflict
from invoicing.adjustments import reapply_adjustments
from invoicing.billing.contexts import load_contexts
from invoicing.billing.effects import Settled, apply_effects, revert_effects
from invoicing.billing.late import LateUsage
from invoicing.billing.runner import rate_item
from invoicing.billing.selection import BillingItem
from invoicing.billing.usage import UsageSource
from invoicing.billing.writer import replace_lines
from invoicing.catalog import metrics_by_code, subscription_domain
from invoicing.custom_sections import copy_onto
from invoicing.models import InvoiceRow, SubscriptionRow
from invoicing.tax.service import TaxService
from invoicing.taxes import tax_rates
from rating.model import Period


def refresh_invoice(
    session: Session,
    usage: UsageSource,
    tenant_id: str,
    invoice: InvoiceRow,
    tax: TaxService | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> InvoiceRow:
    """Re-rate a DRAFT with the latest usage, coupons, wallets and taxes.

    Taxes come from `tax` (the process's provider, Runtime.tax); a provider error
    propagates, and the caller's transaction rolls back: the draft stays as it was.
    Late usage is counted as stored up to `clock.now()`.
    """
    if invoice.status != "DRAFT":
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; only a DRAFT can be refreshed",
            code="illegal_transition",
        )
    if invoice.subscription_id is None:
        raise Conflict(f"invoice {invoice.id} has no subscription to re-rate")
    revert_effects(session, tenant_id, invoice.id)
    subscription_row = session.get(SubscriptionRow, invoice.subscription_id)
    assert subscription_row is not None
    subscription = subscription_domain(subscription_row, metrics_by_code(session, tenant_id))
    period = Period(invoice.period_start, invoice.period_end)
    active = period.overlap(subscription.start, subscription.end) or period
    item = BillingItem(invoice.id, subscription, period, active, invoice.customer_id)
    cutoff = clock.now()
    quantities = usage.metered_quantities(tenant_id, [item.usage_request])
    contexts = load_contexts(session, tenant_id, [item], tax_rates(session, tenant_id))
    late = LateUsage.load(session, usage, tenant_id, [item], cutoff, exclude_invoice_id=invoice.id)
    result = rate_item(
        TaxService() if tax is None else tax,
        tenant_id,
        contexts,
        late,
        item,
        tuple(quantities.get(item.key, ())),
    )
    replace_lines(session, invoice, result.invoice, cutoff)
    apply_effects(session, tenant_id, [Settled(invoice.id, subscription.id, result)], clock.now())
    # Fee adjustments win over the new rating (invoicing/adjustments.py).
    reapply_adjustments(session, tenant_id, invoice)
    copy_onto(session, invoice)  # the sections as they are now
    return invoice
