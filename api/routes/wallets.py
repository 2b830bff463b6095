"""Wallets after creation: update, terminate, their ledger and one transaction."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from api.activity import ActivityDep, sent
from api.deps import RuntimeDep, SessionDep, TenantDep
from api.schemas.common import Page
from api.schemas.credits import WalletPublic, WalletTransactionPublic, WalletUpdate
from invoicing import wallets
from invoicing.pages import whole

router = APIRouter(tags=["credits"])


@router.patch("/wallets/{wallet_id}", summary="Change a wallet's name, priority, expiry, scope")
def update_wallet(
    wallet_id: str,
    body: WalletUpdate,
    session: SessionDep,
    tenant: TenantDep,
    record: ActivityDep,
    runtime: RuntimeDep,
) -> WalletPublic:
    row = wallets.update_wallet(session, tenant, wallet_id, body.to_patch(), runtime.clock.now())
    record(session, "wallet.updated", "wallet", wallet_id, sent(body))
    return WalletPublic.from_row(row)


@router.post(
    "/wallets/{wallet_id}/terminate", summary="End a wallet; its remaining credits are forfeited"
)
def terminate_wallet(
    wallet_id: str, session: SessionDep, tenant: TenantDep, record: ActivityDep, runtime: RuntimeDep
) -> WalletPublic:
    row = wallets.close_wallet(session, tenant, wallet_id, runtime.clock.now())
    record(session, "wallet.terminated", "wallet", wallet_id)
    return WalletPublic.from_row(row)


@router.get("/wallets/{wallet_id}/transactions", summary="The wallet's ledger, newest first")
def wallet_transactions(
    wallet_id: str,
    session: SessionDep,
    tenant: TenantDep,
    direction: Literal["inbound", "outbound"] | None = Query(None, alias="type"),
    status: Literal["pending", "settled", "cancelled"] | None = Query(None),
) -> Page[WalletTransactionPublic]:
    wallet = wallets.get_wallet(session, tenant, wallet_id)
    rows = wallets.list_transactions(session, tenant, wallet_id, direction=direction, status=status)
    funded = wallets.consumers(session, wallet_id)
    return Page[WalletTransactionPublic].of(
        whole(list(reversed(rows))),
        lambda row: WalletTransactionPublic.from_row(row, wallet.currency, funded.get(row.id)),
    )


@router.get("/wallet-transactions/{transaction_id}", summary="One wallet transaction")
def wallet_transaction(
    transaction_id: str, session: SessionDep, tenant: TenantDep
) -> WalletTransactionPublic:
    row = wallets.get_transaction(session, tenant, transaction_id)
    wallet = wallets.get_wallet(session, tenant, row.wallet_id)
    funded = wallets.consumers(session, wallet.id).get(row.id)
    return WalletTransactionPublic.from_row(row, wallet.currency, funded)
