"""The billing entity of a tenant: the seller its invoice documents name.

One per tenant, replaced whole by `PUT /billing-entity`. Without one, documents name
the tenant and carry no seller address (docs/documents.md).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationFailed
from invoicing.countries import iso_country
from invoicing.models import BillingEntityRow
from invoicing.specs import BillingEntitySpec

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


def find_billing_entity(session: Session, tenant_id: str) -> BillingEntityRow | None:
    """The tenant's billing entity, or None when it has set none."""
    return session.get(BillingEntityRow, tenant_id)


def get_billing_entity(session: Session, tenant_id: str) -> BillingEntityRow:
    """The tenant's billing entity, or NotFound."""
    row = find_billing_entity(session, tenant_id)
    if row is None:
        raise NotFound("this tenant has no billing entity yet (PUT /billing-entity sets it)")
    return row


def put_billing_entity(
    session: Session, tenant_id: str, spec: BillingEntitySpec, now: datetime
) -> BillingEntityRow:
    """Set (create or replace) the tenant's billing entity, every part checked."""
    row = find_billing_entity(session, tenant_id)
    if row is None:
        row = BillingEntityRow(tenant_id=tenant_id)
        session.add(row)
    row.legal_name = _required(spec.legal_name, "legalName")
    row.address_line1 = _required(spec.address_line1, "addressLine1")
    row.address_line2 = _optional(spec.address_line2)
    row.city = _required(spec.city, "city")
    row.postal_code = _required(spec.postal_code, "postalCode")
    row.country = iso_country(spec.country)
    row.tax_id = _optional(spec.tax_id)
    row.email = _email(spec.email)
    row.iban = _iban(spec.iban)
    row.updated_at = now
    return row


def _required(value: str, what: str) -> str:
    text = value.strip()
    if not text:
        raise ValidationFailed(f"{what} must not be blank")
    return text


def _optional(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def _email(value: str | None) -> str | None:
    text = _optional(value)
    if text is not None and not _EMAIL.match(text):
        raise ValidationFailed(f"email {value!r} is not an e-mail address", code="invalid_email")
    return text


def _iban(value: str | None) -> str | None:
    """An IBAN in its electronic form (no spaces, upper case), its check digits verified
    (ISO 13616: the rearranged number mod 97 is 1)."""
    text = _optional(value)
    if text is None:
        return None
    iban = text.replace(" ", "").upper()
    if not _IBAN.match(iban):
        raise ValidationFailed(f"iban {value!r} is not an IBAN", code="invalid_iban")
    iso_country(iban[:2], what="iban country")
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise ValidationFailed(f"iban {value!r} has wrong check digits", code="invalid_iban")
    return iban
