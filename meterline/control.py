"""The local control channel of an embedded `meterline serve`.

In the embedded default one process owns the ClickHouse engine (one chDB path, one
process), so `meterline scheduler` and `meterline bill-run` started beside a running
`serve` of the same data dir cannot open it. They hand their job to the server
instead: `serve` writes `<data dir>/control.json` (mode 0600: only its user can read
the token) with the loopback URL of its API process and a random token, and answers
`POST /internal/jobs/{scheduler-pass|bill-run}` when the request carries that token.
The job runs in the server's bill-run executor (one at a time, as bill runs do) and
answers the lines the command prints, so the output is the same either way.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from core.errors import InvalidInput, Unauthenticated
from meterline import jobs

CONTROL_FILE = "control.json"
TOKEN_HEADER = "X-Meterline-Control-Token"  # noqa: S105 (a header name)


@dataclass(frozen=True)
class Channel:
    url: str
    token: str


def new_channel(url: str) -> Channel:
    return Channel(url, secrets.token_urlsafe(32))


def publish(data_dir: Path, channel: Channel) -> None:
    """Write the control file of this server (owner-only), replacing a stale one."""
    path = data_dir / CONTROL_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": channel.url, "token": channel.token, "pid": os.getpid()}, handle)
    os.replace(tmp, path)


def withdraw(data_dir: Path, channel: Channel) -> None:
    """Remove the control file if it is still ours."""
    path = data_dir / CONTROL_FILE
    try:
        if json.loads(path.read_text()).get("token") == channel.token:
            path.unlink()
    except (OSError, ValueError):
        pass


def find(data_dir: Path) -> Channel | None:
    """The running server of `data_dir`, if one answers on its control URL."""
    try:
        found = json.loads((data_dir / CONTROL_FILE).read_text())
        channel = Channel(str(found["url"]), str(found["token"]))
        os.kill(int(found["pid"]), 0)  # the process is alive (raises otherwise)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        if httpx.get(f"{channel.url}/healthz", timeout=5).status_code == 200:
            return channel
    except httpx.HTTPError:
        return None
    return None


def hand_over(channel: Channel, job: str, payload: dict[str, Any]) -> jobs.JobResult:
    """Run `job` in the server and return what it printed."""
    response = httpx.post(
        f"{channel.url}/internal/jobs/{job}",
        json=payload,
        headers={TOKEN_HEADER: channel.token},
        timeout=httpx.Timeout(10.0, read=None),  # a bill run takes as long as it takes
    )
    response.raise_for_status()
    body = response.json()
    return jobs.JobResult(lines=list(body["lines"]), ok=bool(body["ok"]))


# -- the server side ---------------------------------------------------------------------


class PassRequest(BaseModel):
    at: datetime | None = None


class BillRunRequest(BaseModel):
    start: datetime
    end: datetime
    tenant: str | None = None


class JobAnswer(BaseModel):
    lines: list[str]
    ok: bool


def router(channel: Channel) -> APIRouter:
    routes = APIRouter(prefix="/internal/jobs", include_in_schema=False)

    def check(token: str | None) -> None:
        if token is None or not hmac.compare_digest(token, channel.token):
            raise Unauthenticated("the control token is missing or wrong")

    async def run(request: Request, job: Any, *args: Any) -> JobAnswer:
        runtime = request.app.state.runtime
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(runtime.billing_executor, job, runtime, *args)
        return JobAnswer(lines=result.lines, ok=result.ok)

    @routes.post("/scheduler-pass")
    async def scheduler_pass(
        body: PassRequest,
        request: Request,
        token: str | None = Header(None, alias=TOKEN_HEADER),
    ) -> JobAnswer:
        check(token)
        at = body.at or request.app.state.runtime.clock.now()
        if at.tzinfo is None:
            raise InvalidInput("at needs a time zone")
        return await run(request, jobs.scheduler_pass, at)

    @routes.post("/bill-run")
    async def bill_run(
        body: BillRunRequest,
        request: Request,
        token: str | None = Header(None, alias=TOKEN_HEADER),
    ) -> JobAnswer:
        check(token)
        return await run(request, jobs.bill_month, body.start, body.end, body.tenant)

    return routes
