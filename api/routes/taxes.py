"""Tax rate changes; creation, reads and deletion are in api/routes/credits.py."""

from __future__ import annotations

from fastapi import APIRouter

from api.activity import ActivityDep, sent
from api.deps import SessionDep, TenantDep
from api.schemas.credits import TaxPublic, TaxUpdate
from invoicing import taxes

router = APIRouter(tags=["credits"])


@router.patch("/taxes/{code}", summary="Update a tax rate (for what is rated from now on)")
def update_tax(
    code: str, body: TaxUpdate, session: SessionDep, tenant: TenantDep, record: ActivityDep
) -> TaxPublic:
    row = taxes.update_tax(session, tenant, code, body.to_spec())
    record(session, "tax.updated", "tax", code, sent(body))
    return TaxPublic.from_row(row)
