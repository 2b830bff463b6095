"""The usage event: parsing and validation as pure functions.

The API and the stream workers share these functions, so an event produced straight
to Kafka is judged exactly like one posted over HTTP. A bad event becomes a
`Rejection` with a reason a person understands; it never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

MAX_ID_LENGTH = 256
MAX_PROPERTIES = 64
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
# ClickHouse Decimal(38, 12): at most 26 integer digits.
MAX_VALUE = Decimal(10) ** 26


@dataclass(frozen=True, slots=True)
class UsageEvent:
    tenant_id: str
    event_id: str
    customer_id: str
    metric: str
    timestamp: datetime
    value: Decimal | None
    properties: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """The API's event shape, with its tenant."""
        return {
            "tenantId": self.tenant_id,
            "id": self.event_id,
            "customerId": self.customer_id,
            "metric": self.metric,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "value": None if self.value is None else format(self.value, "f"),
            "properties": self.properties,
        }

    def to_message(self) -> bytes:
        """One event as one message of the usage-events topic."""
        return orjson.dumps(self.to_dict())

    @property
    def message_key(self) -> bytes:
        # Keyed by tenant/customer: one customer's events stay ordered on one partition.
        return f"{self.tenant_id}/{self.customer_id}".encode()


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    event_id: str | None = None


def parse_event(
    raw: Any, *, tenant_id: str | None, received_at: datetime
) -> UsageEvent | Rejection:
    """Validate one event object. `tenant_id` is None when the message must carry its own."""
    if not isinstance(raw, dict):
        return Rejection("event must be a JSON object")
    event_id = raw.get("id")
    ident = event_id if isinstance(event_id, str) else None
    if tenant_id is None:
        tenant = raw.get("tenantId")
        if not isinstance(tenant, str) or not tenant:
            return Rejection("tenantId is required on events produced to Kafka", ident)
        tenant_id = tenant
    if not isinstance(event_id, str) or not event_id.strip():
        return Rejection("id is required and must be a non-empty string", ident)
    if len(event_id) > MAX_ID_LENGTH:
        return Rejection(f"id is longer than {MAX_ID_LENGTH} characters", ident)
    customer = raw.get("customerId")
    if not isinstance(customer, str) or not customer.strip():
        return Rejection("customerId is required and must be a non-empty string", ident)
    if len(customer) > MAX_ID_LENGTH:
        return Rejection(f"customerId is longer than {MAX_ID_LENGTH} characters", ident)
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        return Rejection("metric is required and must be a non-empty string", ident)
    if len(metric) > MAX_ID_LENGTH:
        return Rejection(f"metric is longer than {MAX_ID_LENGTH} characters", ident)

    timestamp = _parse_timestamp(raw.get("timestamp"), received_at)
    if isinstance(timestamp, str):
        return Rejection(timestamp, ident)

    value: Decimal | None = None
    if raw.get("value") is not None:
        parsed = _parse_number(raw["value"])
        if parsed is None:
            return Rejection("value must be a finite number or a decimal string", ident)
        value = parsed

    properties = raw.get("properties")
    if properties is None:
        props: dict[str, str] = {}
    elif not isinstance(properties, dict):
        return Rejection("properties must be a JSON object", ident)
    elif len(properties) > MAX_PROPERTIES:
        return Rejection(f"properties has more than {MAX_PROPERTIES} keys", ident)
    else:
        props = {}
        for key, item in properties.items():
            text = _property_text(item)
            if text is None:
                return Rejection(f"properties.{key} must be a string, number or boolean", ident)
            props[str(key)] = text

    return UsageEvent(
        tenant_id=tenant_id,
        event_id=event_id,
        customer_id=customer,
        metric=metric,
        timestamp=timestamp,
        value=value,
        properties=props,
    )


# One event, encoded, at most this big: the product's limit, far below Kafka's message
# size, so that any event fits a message and an envelope is split by bytes.
MAX_EVENT_BYTES = 64 * 1024
# An envelope of the API's stays below this (Kafka refuses messages over ~1 MB).
MAX_MESSAGE_BYTES = 900 * 1024


def encode_event(event: UsageEvent) -> bytes:
    """One event as an envelope member (without its tenant, which the envelope carries)."""
    return orjson.dumps(_without_tenant(event.to_dict()))


def envelopes(tenant_id: str, encoded: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """Encoded events of one tenant as envelopes `{"tenantId", "events": [...]}` of at
    most MAX_MESSAGE_BYTES and 1,000 events each: (events in it, message), in order."""
    head = b'{"tenantId":' + orjson.dumps(tenant_id) + b',"events":['
    out: list[tuple[int, bytes]] = []
    members: list[bytes] = []
    size = len(head) + 2
    for item in encoded:
        if members and (size + len(item) + 1 > MAX_MESSAGE_BYTES or len(members) >= 1_000):
            out.append((len(members), head + b",".join(members) + b"]}"))
            members, size = [], len(head) + 2
        members.append(item)
        size += len(item) + 1
    if members:
        out.append((len(members), head + b",".join(members) + b"]}"))
    return out


def encode_batch(tenant_id: str, events: list[UsageEvent]) -> bytes:
    """Several events of one tenant as one message: `{"tenantId", "events": [...]}`.

    The API sends its accepted events this way, a few hundred per message, all of them
    for customers that hash to the same partition, so per-customer order is kept while
    the stream handles one message instead of hundreds.
    """
    return orjson.dumps(
        {"tenantId": tenant_id, "events": [_without_tenant(e.to_dict()) for e in events]}
    )


def _without_tenant(event: dict[str, Any]) -> dict[str, Any]:
    event.pop("tenantId", None)
    return event


# A run of 16 or more digits (or points) may be a number a double cannot hold exactly.
_LONG_NUMBER = re.compile(rb"[0-9][0-9.]{15,}")


def loads_exact(data: bytes) -> Any:
    """JSON with every number exact: orjson when the text has no long number, else the
    standard parser with integers as int and fractions as Decimal.

    orjson reads an integer above 2**64 and any fraction as a double, which would store
    123456789012345678901 as 123456789012345680000; a double holds 15 significant
    digits exactly, so shorter numbers keep their value through it (and through
    `repr`). A number orjson refuses (1e400) is read by the standard parser too, so that
    it is rejected as an event value, not as bad JSON. Raises ValueError on bad JSON.
    """
    if _LONG_NUMBER.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # 1e400, or really not JSON: the standard parser decides
    try:
        return json.loads(data, parse_float=Decimal, parse_constant=_no_constant)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_message(payload: bytes, *, received_at: datetime) -> list[UsageEvent | Rejection]:
    """Parse one Kafka message of the usage-events topic: one event, or a batch envelope."""
    try:
        raw = loads_exact(payload)
    except ValueError as exc:
        return [Rejection(f"message is not valid JSON: {exc}")]
    if isinstance(raw, dict) and isinstance(raw.get("events"), list):
        tenant = raw.get("tenantId")
        if not isinstance(tenant, str) or not tenant:
            return [Rejection("tenantId is required on a batch of events")]
        return [parse_event(e, tenant_id=tenant, received_at=received_at) for e in raw["events"]]
    return [parse_event(raw, tenant_id=None, received_at=received_at)]


def _parse_timestamp(value: Any, received_at: datetime) -> datetime | str:
    """A UTC datetime, or the reason it is not one. Missing means 'now' (as Lago does)."""
    if value is None:
        return received_at
    if isinstance(value, bool):
        return "timestamp must be an RFC 3339 string with a time zone"
    if isinstance(value, int | float):
        try:
            parsed = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return "timestamp is out of range"
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return f"timestamp {value!r} is not an RFC 3339 date-time"
        if parsed.tzinfo is None:
            return f"timestamp {value!r} has no time zone (use Z or an offset)"
        parsed = parsed.astimezone(UTC)
    else:
        return "timestamp must be an RFC 3339 string with a time zone"
    if not MIN_TIMESTAMP <= parsed < MAX_TIMESTAMP:
        return "timestamp must be between 2000 and 2100"
    return parsed


def _parse_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, int | str):
            number = Decimal(str(value).strip())
        else:
            return None
    except InvalidOperation:
        return None
    # copy_abs, not abs(): abs() rounds to the context's 28 digits (38 fit the store).
    if not number.is_finite() or number.copy_abs() >= MAX_VALUE:
        return None
    # Keep at most 12 decimals, the storage scale.
    if number.as_tuple().exponent < -12:  # type: ignore[operator]
        return None
    return number


def _property_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else None
    if isinstance(value, float):
        return (
            repr(value) if value == value and value not in (float("inf"), float("-inf")) else None
        )
    return None
