"""Direct Kafka ingest with a non-Python client (issue 7, item 7): `kcat` (librdkafka,
the Debian package; `make test` installs it with infra/tools.sh) produces single
events, envelopes and junk straight to the live stack's usage-events topic. The events
are stored exactly once and priced; each bad message goes to usage-events-dlq with its
reason and to GET /events/rejected; the worker goes on."""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

import orjson
import pytest

from tests.helpers.scenarios import customer, metric, per_unit, plan
from tests.helpers.topics import tenant_messages

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]


def _kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not installed: run infra/tools.sh kcat (make test does)")
    return path


def _produce(bootstrap: str, topic: str, messages: list[tuple[str, bytes]]) -> None:
    """Each (key, value) as one message, keyed (-K with a delimiter that JSON never has
    outside strings here), acks=all; kcat exits non-zero if delivery fails."""
    lines = b"".join(key.encode() + b"\t" + value + b"\n" for key, value in messages)
    subprocess.run(
        [_kcat(), "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-X", "acks=all"],
        input=lines,
        check=True,
        timeout=60,
    )


def _setup(c: Any) -> None:
    metric(c, "gb", "sum")
    plan(c, "p", [per_unit("gb", "0.25")])
    customer(c, "acme", "p")


def _event(i: int, value: str) -> dict[str, Any]:
    return {
        "id": f"k{i}",
        "customerId": "acme",
        "metric": "gb",
        "timestamp": "2026-10-05T10:00:00Z",
        "value": value,
    }


def test_kcat_events_envelopes_and_junk(stack: Any) -> None:
    c = stack.tenant("kcat")
    _setup(c)
    tenant = c.tenant_id
    settings = stack.runtime.settings
    key = f"{tenant}/acme"
    singles = [(key, orjson.dumps({"tenantId": tenant, **_event(i, "1.5")})) for i in range(10)]
    envelope = orjson.dumps(
        {"tenantId": tenant, "events": [_event(i, "0.125") for i in range(10, 110)]}
    )
    junk = [
        (key, b"{not json"),
        (key, orjson.dumps({"tenantId": tenant, **_event(200, "1"), "timestamp": "yesterday"})),
        (key, orjson.dumps({**_event(201, "1")})),  # no tenantId
    ]
    # A repeat of the singles (a producer retrying) counts once.
    _produce(stack.runtime.bootstrap, settings.events_topic, [*singles, (key, envelope), *junk])
    _produce(stack.runtime.bootstrap, settings.events_topic, singles)
    c.wait_events(110)

    usage = c.ok("GET", "/customers/acme/usage", params={"from": "2026-10-01", "to": "2026-11-01"})
    [gb] = usage["metrics"]
    # 10 × 1.5 + 100 × 0.125 = 27.5 GB at 0.25.
    assert (gb["quantity"], gb["amount"]) == ("27.5", "6.88")

    dead = tenant_messages(stack.runtime.bootstrap, settings.dlq_topic, tenant, expect=1)
    reasons = [m["reason"] for m in dead]
    assert len(dead) == 1 and "timestamp" in reasons[0]  # the one of this tenant
    deadline = time.monotonic() + 30
    while True:
        rejected = c.ok("GET", "/events/rejected")["data"]
        if rejected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(r["id"], r["source"]) for r in rejected] == [("k200", "kafka")]
    # The junk without a tenant reached the DLQ too (no tenant: only there).
    every = _dlq_payloads(stack)
    assert any(b"{not json" in p for p in every)
    assert any(b'"k201"' in p for p in every)


def _dlq_payloads(stack: Any) -> list[bytes]:
    """Every DLQ message's payload, read with kcat itself (-C -e: to the end)."""
    out = subprocess.run(
        [_kcat(), "-C", "-b", stack.runtime.bootstrap, "-t", stack.runtime.settings.dlq_topic,
         "-o", "beginning", "-e", "-q", "-f", "%s\n"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout  # fmt: skip
    return [orjson.loads(line)["payload"].encode() for line in out.splitlines() if line.strip()]
