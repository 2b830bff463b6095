"""Webhook deliveries: one row per (endpoint, event), the exact body that is signed and
sent on every attempt, and the outcome of the last one.

`fanout` writes the rows when the dispatcher hands it an outbox event (the body then
holds the object as its GET returns it, rendered by the composition root). `claim`
leases due rows (never more than `PER_ENDPOINT` in flight for one endpoint, so a slow
receiver holds only its own share), `post` sends one with a 10 s limit, `record`
writes the outcome: any 2xx succeeds; anything else is retried after 8 s, 16 s, 32 s …
up to 30 min (each less up to 20 % jitter), eleven attempts over about 80 minutes in
all, then `failed`. A manual retry is one more attempt.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import metrics
from core.errors import Conflict, NotFound
from invoicing.deliveries.dispatch import Fanout
from invoicing.deliveries.retry import Backoff, Jitter
from invoicing.events import timestamp
from invoicing.models import DomainEventRow, WebhookDeliveryRow, WebhookEndpointRow, new_id
from invoicing.secrets import SecretBox
from invoicing.webhooks.endpoints import private_host, wants
from invoicing.webhooks.signing import signature

BACKOFF = Backoff(base=timedelta(seconds=8), cap=timedelta(minutes=30), max_attempts=11)
TIMEOUT_SECONDS = 10.0
LEASE = timedelta(seconds=60)  # longer than an attempt can take
PER_ENDPOINT = 8  # attempts in flight for one endpoint, at most
USER_AGENT = "Meterline-Webhooks/1"

Render = Callable[[Session, DomainEventRow], Mapping[str, Any]]


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    endpoint_id: str
    url: str
    secret: str
    type: str
    body: bytes


@dataclass(frozen=True)
class Result:
    delivery_id: str
    endpoint_id: str
    ok: bool
    status_code: int | None = None
    error: str | None = None


@dataclass
class WebhookReport:
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.succeeded + self.retrying + self.failed


def fanout(render: Render) -> Fanout:
    """The dispatcher's step for webhooks: a delivery per subscribed endpoint."""

    def add(session: Session, event: DomainEventRow, now: datetime) -> None:
        endpoints = [
            e
            for e in session.execute(
                select(WebhookEndpointRow).where(
                    WebhookEndpointRow.tenant_id == event.tenant_id,
                    WebhookEndpointRow.deleted_at.is_(None),
                    WebhookEndpointRow.created_at <= event.created_at,
                )
            ).scalars()
            if wants(e, event.type)
        ]
        if not endpoints:
            return
        done = set(
            session.execute(
                select(WebhookDeliveryRow.endpoint_id).where(
                    WebhookDeliveryRow.event_id == event.id
                )
            ).scalars()
        )
        body = orjson.dumps(
            {
                "id": event.id,
                "type": event.type,
                "createdAt": timestamp(event.created_at),
                "data": render(session, event),
            }
        ).decode()
        for endpoint in endpoints:
            if endpoint.id in done:
                continue
            session.add(
                WebhookDeliveryRow(
                    id=new_id("whd"),
                    tenant_id=event.tenant_id,
                    endpoint_id=endpoint.id,
                    event_id=event.id,
                    type=event.type,
                    body=body,
                    status="pending",
                    attempts=0,
                    manual=False,
                    next_attempt_at=now,
                    created_at=now,
                )
            )

    return add


def claim(
    sessions: sessionmaker[Session],
    box: SecretBox,
    now: datetime,
    limit: int,
    in_flight: Mapping[str, int] | None = None,
) -> list[Attempt]:
    """Lease up to `limit` due deliveries of enabled endpoints, oldest due first, at
    most `PER_ENDPOINT` per endpoint counting those already `in_flight`."""
    busy = Counter(in_flight or {})
    with sessions() as session, session.begin():
        rows = session.execute(
            select(WebhookDeliveryRow, WebhookEndpointRow)
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(
                WebhookDeliveryRow.status == "pending",
                WebhookDeliveryRow.next_attempt_at <= now,
                WebhookEndpointRow.status == "enabled",
                WebhookEndpointRow.deleted_at.is_(None),
            )
            .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.id)
            .limit(limit * 4)
            .with_for_update(skip_locked=True, of=WebhookDeliveryRow)
        ).all()
        out: list[Attempt] = []
        for delivery, endpoint in rows:
            if len(out) >= limit or busy[endpoint.id] >= PER_ENDPOINT:
                continue
            busy[endpoint.id] += 1
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.next_attempt_at = now + LEASE
            out.append(
                Attempt(
                    delivery.id,
                    endpoint.id,
                    endpoint.url,
                    box.open(endpoint.secret),
                    delivery.type,
                    delivery.body.encode(),
                )
            )
        return out


async def post(client: httpx.AsyncClient, attempt: Attempt, *, block_private: bool) -> Result:
    """One attempt: the signed POST, an answer within 10 s or a failure."""
    fail = Result(attempt.delivery_id, attempt.endpoint_id, ok=False)
    if block_private:
        host = urlsplit(attempt.url).hostname or ""
        if await asyncio.to_thread(private_host, host):
            return Result(fail.delivery_id, fail.endpoint_id, False, None, "private destination")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Meterline-Event": attempt.type,
        "X-Meterline-Delivery": attempt.delivery_id,
        "X-Meterline-Signature": signature(attempt.secret, attempt.body),
    }
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            async with client.stream(
                "POST", attempt.url, content=attempt.body, headers=headers
            ) as response:
                code = response.status_code  # the body is not read: only the status counts
    except TimeoutError:
        return Result(fail.delivery_id, fail.endpoint_id, False, None, "no answer in 10 s")
    except httpx.HTTPError as error:
        return Result(
            fail.delivery_id, fail.endpoint_id, False, None, f"{type(error).__name__}: {error}"
        )
    ok = 200 <= code < 300
    return Result(
        attempt.delivery_id, attempt.endpoint_id, ok, code, None if ok else f"HTTP {code}"
    )


def record(
    sessions: sessionmaker[Session],
    results: Sequence[Result],
    now: datetime,
    draw: Jitter = random.random,
) -> WebhookReport:
    report = WebhookReport()
    if not results:
        return report
    with sessions() as session, session.begin():
        for result in results:
            row = session.get(WebhookDeliveryRow, result.delivery_id)
            if row is None or row.status != "pending":
                continue  # given up meanwhile (the endpoint deleted)
            row.response_code = result.status_code
            row.last_error = result.error
            status = metrics.status_class(result.status_code)
            if result.ok:
                row.status = "succeeded"
                report.succeeded += 1
                metrics.WEBHOOK_ATTEMPTS.labels("succeeded", status).inc()
                continue
            later = None if row.manual else BACKOFF.next_attempt(row.attempts, now, draw)
            if later is None:
                row.status = "failed"
                report.failed += 1
            else:
                row.next_attempt_at = later
                report.retrying += 1
            metrics.WEBHOOK_ATTEMPTS.labels("failed" if later is None else "retrying", status).inc()
    return report


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )


def deliver_due(
    sessions: sessionmaker[Session],
    box: SecretBox,
    now: datetime,
    *,
    block_private: bool = False,
    batch: int = 64,
) -> WebhookReport:
    """Everything due by `now`, attempted once each (a scheduler pass; tests)."""

    async def run() -> WebhookReport:
        total = WebhookReport()
        async with new_client() as client:
            while attempts := await asyncio.to_thread(claim, sessions, box, now, batch):
                results = await asyncio.gather(
                    *(post(client, a, block_private=block_private) for a in attempts)
                )
                report = await asyncio.to_thread(record, sessions, results, now)
                total.succeeded += report.succeeded
                total.retrying += report.retrying
                total.failed += report.failed
        return total

    return asyncio.run(run())


def retry(session: Session, tenant_id: str, delivery_id: str, now: datetime) -> WebhookDeliveryRow:
    """One more attempt, now, whatever the delivery's state."""
    row = get(session, tenant_id, delivery_id)
    endpoint = session.get(WebhookEndpointRow, row.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        raise Conflict("its endpoint was deleted", code="endpoint_deleted")
    row.status, row.manual, row.next_attempt_at = "pending", True, now
    return row


def get(session: Session, tenant_id: str, delivery_id: str) -> WebhookDeliveryRow:
    row = session.get(WebhookDeliveryRow, delivery_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"webhook delivery {delivery_id!r} not found")
    return row


def list_for_endpoint(
    session: Session,
    endpoint_id: str,
    *,
    status: str | None = None,
    event_id: str | None = None,
    limit: int = 100,
) -> list[WebhookDeliveryRow]:
    """Newest first."""
    query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDeliveryRow.status == status)
    if event_id is not None:
        query = query.where(WebhookDeliveryRow.event_id == event_id)
    query = query.order_by(WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.id.desc())
    return list(session.execute(query.limit(limit)).scalars())
