"""Usage ingestion: validate each event, produce the good ones to Kafka, answer 202.

A 202 means every accepted event is durably in Kafka (acks=all); a malformed event
is rejected alone, with its index and reason.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import RuntimeDep, TenantDep
from api.serialize import ts
from meterline.errors import DomainError, ValidationFailed
from streams.schema import Rejection, UsageEvent, parse_event

router = APIRouter(tags=["events"])


class BadJson(DomainError):
    status = 400
    code = "bad_json"


@router.post(
    "/events",
    status_code=202,
    summary="Ingest a batch of usage events (up to 10,000)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": {"type": "array", "items": {"type": "object"}}},
                    }
                }
            },
        }
    },
)
async def ingest_events(request: Request, runtime: RuntimeDep, tenant: TenantDep) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadJson("the request body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValidationFailed('the body must be {"events": [ ... ]}')
    raw_events: list[Any] = body["events"]
    limit = runtime.settings.max_events_per_request
    if len(raw_events) > limit:
        raise ValidationFailed(f"at most {limit} events per request (got {len(raw_events)})")
    now = datetime.now(UTC)
    accepted: list[UsageEvent] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        parsed = parse_event(raw, tenant_id=tenant, received_at=now)
        if isinstance(parsed, Rejection):
            rejected.append({"index": index, "id": parsed.event_id, "reason": parsed.reason})
        else:
            accepted.append(parsed)
    producer = runtime.producer
    if accepted:
        if producer is None:
            raise DomainError("this process does not ingest events", code="unavailable")
        topic = runtime.settings.events_topic
        futures = [
            await producer.send(topic, event.to_message(), key=event.message_key)
            for event in accepted
        ]
        await asyncio.gather(*futures)
    body = orjson.dumps({"accepted": len(accepted), "rejected": rejected})
    return Response(body, status_code=202, media_type="application/json")


@router.get("/events/rejected", summary="Events the stream refused, with reasons")
async def rejected_events(
    runtime: RuntimeDep, tenant: TenantDep, limit: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    rows = await asyncio.to_thread(runtime.usage.rejected_events, tenant, limit)
    return {"data": [{**r, "rejectedAt": ts(r["rejectedAt"])} for r in rows], "nextCursor": None}


@router.get("/usage/summary", summary="Events per metric and hour (real-time rollup)")
async def usage_summary(
    runtime: RuntimeDep, tenant: TenantDep, hours: int = Query(24, ge=1, le=24 * 92)
) -> dict[str, Any]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    rows = await asyncio.to_thread(runtime.usage.hourly_rollup, tenant, start, end)
    return {
        "from": ts(start),
        "to": ts(end),
        "data": [{**r, "hour": ts(r["hour"].replace(tzinfo=UTC))} for r in rows],
    }
