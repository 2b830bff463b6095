"""The deliverers as the process runs them: the outbox fanned out, then what is due
sent, on a timer inside `serve` / `worker` (API.md: deliveries need no scheduler pass
to happen on time) and once more in every scheduler pass, as of its instant."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from invoicing.deliveries.dispatch import Fanout, dispatch_all
from invoicing.email import queue as email
from meterline.settings import Settings

if TYPE_CHECKING:
    from meterline.runtime import Runtime

log = logging.getLogger("meterline.deliverers")


@dataclass
class DeliveryPass:
    dispatched: int = 0
    email: email.DeliveryReport = field(default_factory=email.DeliveryReport)

    def lines(self) -> list[str]:
        """What a scheduler pass prints of it (nothing when nothing was sent)."""
        report = self.email
        if not report.attempted:
            return []
        parts = [f"{report.sent} sent"]
        if report.retrying:
            parts.append(f"{report.retrying} to retry")
        if report.failed:
            parts.append(f"{report.failed} failed")
        return [f"email: {', '.join(parts)}"]


def fanouts(settings: Settings) -> list[Fanout]:
    """Who hears of each domain event, as configured."""
    out: list[Fanout] = []
    if settings.smtp is not None and settings.email_automatic:
        out.append(email.fanout)
    return out


def deliver(runtime: Runtime, now: datetime) -> DeliveryPass:
    """Fan the outbox out, then send every delivery due by `now`."""
    result = DeliveryPass(dispatched=dispatch_all(runtime.sessions, fanouts(runtime.settings), now))
    smtp = runtime.settings.smtp
    if smtp is not None:
        while True:
            batch = email.deliver_due(runtime.sessions, smtp, now)
            result.email.sent += batch.sent
            result.email.retrying += batch.retrying
            result.email.failed += batch.failed
            if batch.attempted == 0:
                break
    return result


async def run(runtime: Runtime, interval: float) -> None:
    """Deliver continuously, each `interval` seconds, as of the runtime's clock."""
    while True:
        try:
            await asyncio.to_thread(deliver, runtime, runtime.clock.now())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a delivery pass failed; trying again")
        await asyncio.sleep(interval)
