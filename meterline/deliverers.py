"""The deliverers as the process runs them: the outbox fanned out (email, webhooks),
then what is due sent — continuously inside `serve` / `worker` (API.md: deliveries need
no scheduler pass to happen on time) and once more in every scheduler pass, as of its
instant.

The webhook body carries the object as its GET returns it: the composition root
renders it with the API's own response models, so the two can never differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from api import render as rendering
from api.schemas.payments import PaymentPublic
from invoicing import invoices
from invoicing.deliveries.dispatch import Fanout, dispatch_all
from invoicing.email import queue as email
from invoicing.erp import sync as erp
from invoicing.erp.base import Context
from invoicing.models import DomainEventRow
from invoicing.webhooks import deliveries as webhooks
from meterline.settings import Settings

if TYPE_CHECKING:
    from meterline.runtime import Runtime

log = logging.getLogger("meterline.deliverers")

MAX_IN_FLIGHT = 32  # webhook attempts at once, over every endpoint


@dataclass
class DeliveryPass:
    dispatched: int = 0
    email: email.DeliveryReport = field(default_factory=email.DeliveryReport)
    webhooks: webhooks.WebhookReport = field(default_factory=webhooks.WebhookReport)
    erp: erp.SyncReport = field(default_factory=erp.SyncReport)

    def lines(self) -> list[str]:
        """What a scheduler pass prints of it (nothing when nothing was attempted)."""
        out = []
        for name, done, retrying, failed in (
            ("email", self.email.sent, self.email.retrying, self.email.failed),
            ("webhooks", self.webhooks.succeeded, self.webhooks.retrying, self.webhooks.failed),
            ("erp", self.erp.synced, self.erp.retrying, self.erp.failed),
        ):
            if not done + retrying + failed:
                continue
            parts = [f"{done} {'synced' if name == 'erp' else 'sent'}"]
            if retrying:
                parts.append(f"{retrying} to retry")
            if failed:
                parts.append(f"{failed} failed")
            out.append(f"{name}: {', '.join(parts)}")
        return out


def render(session: Session, event: DomainEventRow) -> Mapping[str, Any]:
    """A webhook's `data`: the object as its GET returns it, else the event's fields."""
    family = event.type.partition(".")[0]
    if family == "invoice":
        return rendering.invoice(session, event.tenant_id, event.object_id)
    if family == "credit_note":
        return rendering.credit_note(session, event.tenant_id, event.object_id)
    if event.type == "payment.succeeded":
        payment = invoices.get_payment(session, event.tenant_id, event.object_id)
        return PaymentPublic.from_row(payment).model_dump(mode="json", by_alias=True)
    return dict(event.data)


def fanouts(settings: Settings) -> list[Fanout]:
    """Who hears of each domain event, as configured."""
    out: list[Fanout] = [webhooks.fanout(render), erp.fanout]
    if settings.smtp is not None and settings.email_automatic:
        out.append(email.fanout)
    return out


def deliver(runtime: Runtime, now: datetime, *, webhooks_too: bool = True) -> DeliveryPass:
    """Fan the outbox out, then send every delivery due by `now`."""
    settings = runtime.settings
    result = DeliveryPass(dispatched=dispatch_all(runtime.sessions, fanouts(settings), now))
    smtp = settings.smtp
    if smtp is not None:
        while True:
            batch = email.deliver_due(runtime.sessions, smtp, now)
            result.email.sent += batch.sent
            result.email.retrying += batch.retrying
            result.email.failed += batch.failed
            if batch.attempted == 0:
                break
    result.erp = erp.sync_due(
        runtime.sessions,
        settings.secrets,
        rendering.document,
        now,
        Context(now=runtime.clock.now, redirect_uri=settings.erp_redirect_uri),
    )
    if webhooks_too:
        result.webhooks = webhooks.deliver_due(
            runtime.sessions,
            settings.secrets,
            now,
            block_private=settings.webhook_block_private,
        )
    return result


async def run(runtime: Runtime, interval: float) -> None:
    """Deliver continuously: the outbox and email each `interval` seconds, webhooks as
    soon as a slot is free (a slow endpoint holds only its own slots)."""
    sender = asyncio.create_task(send_webhooks(runtime, interval), name="webhook-sender")
    try:
        while True:
            try:
                await asyncio.to_thread(deliver, runtime, runtime.clock.now(), webhooks_too=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a delivery pass failed; trying again")
            await asyncio.sleep(interval)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def send_webhooks(runtime: Runtime, interval: float) -> None:
    settings = runtime.settings
    in_flight: dict[asyncio.Task[webhooks.Result], webhooks.Attempt] = {}
    per_endpoint: Counter[str] = Counter()
    async with webhooks.new_client() as client:
        while True:
            try:
                free = MAX_IN_FLIGHT - len(in_flight)
                if free > 0:
                    claimed = await asyncio.to_thread(
                        webhooks.claim,
                        runtime.sessions,
                        settings.secrets,
                        runtime.clock.now(),
                        free,
                        dict(per_endpoint),
                    )
                    for attempt in claimed:
                        task = asyncio.create_task(
                            webhooks.post(
                                client, attempt, block_private=settings.webhook_block_private
                            )
                        )
                        in_flight[task] = attempt
                        per_endpoint[attempt.endpoint_id] += 1
                if not in_flight:
                    await asyncio.sleep(interval)
                    continue
                done, _ = await asyncio.wait(
                    in_flight, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                )
                results = []
                for task in done:
                    attempt = in_flight.pop(task)
                    per_endpoint[attempt.endpoint_id] -= 1
                    results.append(task.result())
                await asyncio.to_thread(
                    webhooks.record, runtime.sessions, results, runtime.clock.now()
                )
            except asyncio.CancelledError:
                for task in in_flight:
                    task.cancel()
                raise
            except Exception:
                log.exception("sending webhooks failed; trying again")
                await asyncio.sleep(interval)
