"""The ERP sync engine: which documents go to which ERP, when, and what each attempt did.

A finalized invoice, and every later change of it (paid, voided, uncollectible), and an
issued or voided credit note start a sync to each active connection of the tenant:
one `ErpSyncRow` per (connection, document), due at once. `claim` leases due syncs,
`attempt` renders the document as our API shows it at that moment and hands it to the
connector (outside any ledger transaction: an ERP may take seconds), `record` keeps the
outcome and logs it. A failed attempt is retried 3 times, 10 s, 20 s, 40 s later (each
less up to 20 % jitter); after the 4th the sync is `failed` and an `erp.sync_failed`
event goes out. A success keeps the ERP's id (and version) of the record: the next sync
of that document updates it, never creates a second one.

A change that arrives while an attempt is in flight moves the sync's `generation` on:
that attempt's outcome is logged and its ERP id kept, and the sync runs again with the
new state as soon as it is back (never two attempts of one document to one ERP at once,
so a first push cannot create the record twice). A manual sync (`POST /erp/sync`)
starts a new sync of the invoice (its credit notes stay as they are) and makes its first
attempt at once, in the request.
Disconnecting a connection stops its future attempts; the log stays.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import metrics
from core.errors import Conflict, NotFound
from invoicing import events
from invoicing.deliveries.retry import Backoff, Jitter
from invoicing.erp import connections
from invoicing.erp.base import Context, Document, External, Kind, Pushed, SyncError
from invoicing.models import (
    CreditNoteRow,
    DomainEventRow,
    ErpConnectionRow,
    ErpSyncLogRow,
    ErpSyncRow,
    InvoiceRow,
    new_id,
)
from invoicing.pages import Page, keyset_page
from invoicing.secrets import SecretBox

# The domain events that put a document into the ERP (again).
TRIGGERS: dict[str, Kind] = {
    "invoice.finalized": "invoice",
    "invoice.paid": "invoice",
    "invoice.voided": "invoice",
    "invoice.uncollectible": "invoice",
    "credit_note.issued": "credit_note",
    "credit_note.voided": "credit_note",
}
BACKOFF = Backoff(base=timedelta(seconds=10), cap=timedelta(minutes=10), max_attempts=4)
SYNCING = "syncing"  # leased: an attempt is in flight until `next_attempt_at`
LEASE = timedelta(seconds=120)  # longer than an attempt can take (a token refresh, a retry)
WORKERS = 4  # attempts at once in one pass
ERROR_LIMIT = 2000  # characters of an ERP's error kept in the log

# The document as our API shows it, rendered by the composition root.
Render = Callable[[Session, str, Kind, str], Document]


@dataclass(frozen=True)
class Claimed:
    sync_id: str
    generation: int
    attempt: int  # 1, 2, … within this sync
    tenant_id: str
    kind: Kind
    document_id: str
    invoice_id: str
    connection: connections.Opened
    existing: External | None
    manual: bool = False


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    at: datetime
    pushed: Pushed | None
    response_code: int | None
    error: str | None
    credentials: object = None  # the connector's, to keep when it refreshed them

    @property
    def ok(self) -> bool:
        return self.pushed is not None


@dataclass
class SyncReport:
    synced: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.synced + self.retrying + self.failed

    def add(self, other: SyncReport) -> None:
        self.synced += other.synced
        self.retrying += other.retrying
        self.failed += other.failed


def fanout(session: Session, event: DomainEventRow, now: datetime) -> None:
    """The dispatcher's step for ERP sync: a due sync per active connection."""
    kind = TRIGGERS.get(event.type)
    if kind is None:
        return
    if kind == "invoice":
        invoice_id = event.object_id
    else:
        note = session.get(CreditNoteRow, event.object_id)
        if note is None or note.tenant_id != event.tenant_id:
            return
        invoice_id = note.invoice_id
    for connection in connections.active(session, event.tenant_id):
        start(session, connection, kind, event.object_id, invoice_id, now)


def start(
    session: Session,
    connection: ErpConnectionRow,
    kind: Kind,
    document_id: str,
    invoice_id: str,
    now: datetime,
) -> ErpSyncRow:
    """A new sync of the document to the connection, due now (the ERP id is kept)."""
    row = session.execute(
        select(ErpSyncRow).where(
            ErpSyncRow.connection_id == connection.id,
            ErpSyncRow.kind == kind,
            ErpSyncRow.document_id == document_id,
        )
    ).scalar_one_or_none()
    if row is None:
        row = ErpSyncRow(
            id=new_id("erps"),
            tenant_id=connection.tenant_id,
            connection_id=connection.id,
            kind=kind,
            document_id=document_id,
            invoice_id=invoice_id,
            generation=1,
            created_at=now,
        )
        session.add(row)
    else:
        row.generation += 1
    row.attempts, row.updated_at = 0, now
    if row.status != SYNCING:  # an attempt in flight keeps its lease: never two at once
        row.status, row.next_attempt_at = "pending", now
    session.flush()
    return row


def claim(
    sessions: sessionmaker[Session],
    box: SecretBox,
    now: datetime,
    limit: int,
    *,
    sync_ids: Sequence[str] | None = None,
) -> list[Claimed]:
    """Lease up to `limit` due syncs of active connections, oldest due first (or the
    given ones, due or not)."""
    with sessions() as session, session.begin():
        query = select(ErpSyncRow, ErpConnectionRow).join(
            ErpConnectionRow, ErpConnectionRow.id == ErpSyncRow.connection_id
        )
        query = query.where(ErpConnectionRow.status == "active")
        if sync_ids is not None:
            query = query.where(ErpSyncRow.status == "pending", ErpSyncRow.id.in_(list(sync_ids)))
        else:  # due, or leased by a worker that never came back
            query = query.where(
                ErpSyncRow.status.in_(("pending", SYNCING)), ErpSyncRow.next_attempt_at <= now
            )
        rows = session.execute(
            query.order_by(ErpSyncRow.next_attempt_at, ErpSyncRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=ErpSyncRow)
        ).all()
        out = []
        for sync, connection in rows:
            sync.attempts += 1
            sync.status, sync.next_attempt_at = SYNCING, now + LEASE
            sync.updated_at = now
            existing = (
                External(sync.external_id, sync.external_version) if sync.external_id else None
            )
            out.append(
                Claimed(
                    sync.id,
                    sync.generation,
                    sync.attempts,
                    sync.tenant_id,
                    sync.kind,  # type: ignore[arg-type]
                    sync.document_id,
                    sync.invoice_id,
                    connections.opened(connection, box),
                    existing,
                    manual=sync_ids is not None,
                )
            )
        return out


def attempt(
    sessions: sessionmaker[Session], render: Render, claimed: Claimed, context: Context
) -> Outcome:
    """One push of the document as it is now; never raises."""
    with sessions() as session:
        try:
            document = render(session, claimed.tenant_id, claimed.kind, claimed.document_id)
        except NotFound as missing:
            return Outcome(claimed, context.now(), None, None, missing.message)
    try:
        connector = connections.build(claimed.connection, context)
    except Exception as error:  # a config that no longer parses: the attempt fails
        return Outcome(claimed, context.now(), None, None, _message(error))
    try:
        pushed = connector.push(document, claimed.existing)
        return Outcome(
            claimed, context.now(), pushed, pushed.response_code, None, _credentials(connector)
        )
    except SyncError as error:
        message = error.message[:ERROR_LIMIT]
        return Outcome(
            claimed, context.now(), None, error.response_code, message, _credentials(connector)
        )
    except Exception as error:  # a connector's bug must not stop the others
        return Outcome(claimed, context.now(), None, None, _message(error), _credentials(connector))
    finally:
        connector.close()


def record(
    sessions: sessionmaker[Session],
    outcomes: Sequence[Outcome],
    now: datetime,
    box: SecretBox,
    draw: Jitter = random.random,
) -> tuple[SyncReport, list[ErpSyncLogRow]]:
    """Keep each outcome on its sync, log it, and schedule what follows."""
    report = SyncReport()
    logged: list[ErpSyncLogRow] = []
    if not outcomes:
        return report, logged
    with sessions() as session, session.begin():
        for outcome in outcomes:
            claimed = outcome.claimed
            row = session.get(ErpSyncRow, claimed.sync_id)
            connection = session.get(ErpConnectionRow, claimed.connection.id)
            if row is None or connection is None:
                continue
            connections.save_credentials(connection, outcome.credentials, box)
            log = ErpSyncLogRow(
                id=new_id("erpl"),
                tenant_id=row.tenant_id,
                created_at=outcome.at,
                sync_id=row.id,
                connection_id=connection.id,
                provider=connection.provider,
                kind=row.kind,
                document_id=row.document_id,
                invoice_id=row.invoice_id,
                status="SUCCESS" if outcome.ok else "FAILED",
                response_code=outcome.response_code,
                error=outcome.error,
                attempt=claimed.attempt,
                external_id=outcome.pushed.id if outcome.pushed else None,
                manual=claimed.manual,
            )
            session.add(log)
            logged.append(log)
            row.response_code, row.last_error, row.updated_at = (
                outcome.response_code,
                outcome.error,
                now,
            )
            if outcome.pushed is not None:
                row.external_id = outcome.pushed.id
                row.external_version = outcome.pushed.version
                row.synced_at = outcome.at
            current = row.generation == claimed.generation and row.attempts == claimed.attempt
            if row.status != SYNCING or (not current and row.attempts != 0):
                continue  # its lease ran out and another attempt took the sync over
            if not current:
                row.status, row.next_attempt_at = "pending", now  # changed meanwhile: again
                continue
            status = metrics.status_class(outcome.response_code)
            if outcome.ok:
                row.status = "succeeded"
                report.synced += 1
                metrics.ERP_SYNC_ATTEMPTS.labels(connection.provider, "succeeded", status).inc()
                continue
            later = BACKOFF.next_attempt(row.attempts, now, draw)
            if later is not None:
                row.next_attempt_at = later
                report.retrying += 1
                metrics.ERP_SYNC_ATTEMPTS.labels(connection.provider, "retrying", status).inc()
                continue
            row.status = "failed"
            report.failed += 1
            metrics.ERP_SYNC_ATTEMPTS.labels(connection.provider, "failed", status).inc()
            events.record(
                session,
                row.tenant_id,
                "erp.sync_failed",
                row.document_id,
                {
                    "connectionId": connection.id,
                    "provider": connection.provider,
                    "invoiceId": row.invoice_id,
                    "documentType": row.kind,
                    "documentId": row.document_id,
                    "attempts": row.attempts,
                    "responseCode": outcome.response_code,
                    "error": outcome.error,
                },
                now,
            )
        session.flush()
        for log in logged:
            session.expunge(log)
    return report, logged


def sync_due(
    sessions: sessionmaker[Session],
    box: SecretBox,
    render: Render,
    now: datetime,
    context: Context,
    *,
    batch: int = 16,
) -> SyncReport:
    """Attempt every sync due by `now`, once each, a few at a time (`context.now`, the
    real clock, is what tokens expire by)."""
    total = SyncReport()
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="erp-sync") as pool:
        while claimed := claim(sessions, box, now, batch):
            outcomes = list(pool.map(lambda c: attempt(sessions, render, c, context), claimed))
            report, _ = record(sessions, outcomes, max(now, context.now()), box)
            total.add(report)
    return total


def sync_now(
    sessions: sessionmaker[Session],
    box: SecretBox,
    render: Render,
    tenant_id: str,
    invoice_id: str,
    context: Context,
) -> list[ErpSyncLogRow]:
    """`POST /erp/sync`: the invoice synced to every active connection now; the log
    entries of these attempts (a failure is retried later as usual)."""
    now = context.now()
    with sessions() as session, session.begin():
        invoice = session.get(InvoiceRow, invoice_id)
        if invoice is None or invoice.tenant_id != tenant_id:
            raise NotFound(f"invoice {invoice_id!r} not found")
        if invoice.status == "DRAFT":
            raise Conflict(
                f"invoice {invoice_id} is a DRAFT; only finalized invoices go to the ERP",
                code="invalid_state",
            )
        live = connections.active(session, tenant_id)
        if not live:
            raise Conflict("no ERP is connected", code="no_erp_connection")
        ids = [start(session, c, "invoice", invoice_id, invoice_id, now).id for c in live]
    claimed = claim(sessions, box, now, len(ids), sync_ids=ids)
    outcomes = [attempt(sessions, render, c, context) for c in claimed]
    _, logged = record(sessions, outcomes, context.now(), box)
    return logged


def sync_log(
    session: Session,
    tenant_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | None = None,
    invoice_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[ErpSyncLogRow]:
    """The attempts, newest first, at `since` or later and `until` or earlier."""
    query = select(ErpSyncLogRow).where(ErpSyncLogRow.tenant_id == tenant_id)
    if since is not None:
        query = query.where(ErpSyncLogRow.created_at >= since)
    if until is not None:
        query = query.where(ErpSyncLogRow.created_at <= until)
    if status is not None:
        query = query.where(ErpSyncLogRow.status == status)
    if invoice_id is not None:
        query = query.where(ErpSyncLogRow.invoice_id == invoice_id)
    return keyset_page(session, query, ErpSyncLogRow, limit, cursor)


def _credentials(connector: object) -> object:
    return getattr(connector, "credentials", None)


def _message(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:ERROR_LIMIT]
