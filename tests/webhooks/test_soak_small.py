"""The webhook soak of `make bench-webhooks` (bench/webhooks.py), small: 300 events to
three receivers on loopback, one answering 500 to every other attempt, a real
`meterline worker` killed with SIGKILL midway and started again. And the soak's
receiver itself: it must refuse what a real receiver refuses, or the soak proves
nothing."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench.webhooks import Receiver, make_receivers, receivers_running, soak
from invoicing.webhooks.signing import signature

EVENTS = 300


@pytest.mark.kafka
@pytest.mark.ledger
@pytest.mark.clickhouse  # the worker process opens its own chDB
def test_every_event_arrives_signed_across_a_kill_of_the_deliverer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    receivers = make_receivers()
    with receivers_running(receivers):
        result = soak(
            receivers,
            f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
            kafka_bootstrap,
            tmp_path,
            events=EVENTS,
            kill_after=EVENTS // 2,
            complete_within=150,
        )
    total = EVENTS * 3
    assert result.events == EVENTS
    # killed midway, not before the first or after the last delivery
    assert EVENTS // 2 <= result.delivered_before_kill < total
    assert result.lost == 0
    assert all(r.delivered() == EVENTS for r in receivers)
    assert result.bad_signatures == result.bad_requests == 0
    assert result.changed_bodies == result.wrong_data == 0
    assert result.ok
    # the failing endpoint refused the first attempt of each event at least
    assert result.per_receiver[2]["failed"] >= EVENTS
    assert result.per_receiver[0]["failed"] == result.per_receiver[1]["failed"] == 0
    assert result.ledger_statuses == {"succeeded": total}
    # at least once: repeats only of what was in flight at the kill (32 at most)
    assert 0 <= result.duplicates <= 32


def _body(event_id: str = "evt_1", type_: str = "quota.exceeded") -> bytes:
    return orjson.dumps(
        {"id": event_id, "type": type_, "createdAt": "2026-11-03T00:00:00Z", "data": {"n": 1}}
    )


def _headers(secret: str, body: bytes, **changes: str) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "user-agent": "Meterline-Webhooks/1",
        "x-meterline-event": "quota.exceeded",
        "x-meterline-delivery": "whd_1",
        "x-meterline-signature": signature(secret, body),
    }
    return headers | changes


def test_the_receiver_refuses_a_wrong_signature_and_a_misshapen_request() -> None:
    receiver = Receiver("r", "whsec_right", flaky=False)
    body = _body()
    assert receiver.handle(_headers("whsec_wrong", body), body) == 401
    tampered = body.replace(b'"n":1', b'"n":2')
    assert receiver.handle(_headers("whsec_right", body), tampered) == 401
    assert receiver.handle(_headers("whsec_right", body, **{"x-meterline-event": "x"}), body) == 400
    assert receiver.bad_signatures == 2 and receiver.bad_requests == 1
    assert receiver.delivered() == 0

    assert receiver.handle(_headers("whsec_right", body), body) == 204
    assert receiver.handle(_headers("whsec_right", body), body) == 204
    assert receiver.delivered() == 1 and receiver.duplicates() == 1
    assert receiver.data == {"evt_1": {"n": 1}}


def test_the_flaky_receiver_fails_odd_attempts_and_notices_a_changed_body() -> None:
    receiver = Receiver("r", "whsec_right", flaky=True)
    first, other = _body("evt_1"), _body("evt_2")
    answers = [receiver.handle(_headers("whsec_right", first), first) for _ in range(4)]
    assert answers == [500, 204, 500, 204]
    assert receiver.handle(_headers("whsec_right", other), other) == 500
    assert receiver.failed_answers == 3 and receiver.delivered() == 1
    # a later attempt of evt_1 whose bytes differ (still validly signed) is counted
    changed = first.replace(b'"n":1', b'"n":3')
    receiver.handle(_headers("whsec_right", changed), changed)
    assert receiver.changed_bodies == 1


def test_a_request_cut_off_by_a_dying_sender_is_not_taken_for_a_bad_signature() -> None:
    import socket
    from urllib.parse import urlsplit

    receiver = Receiver("r", "whsec_right", flaky=False)
    with receivers_running([receiver]):
        parts = urlsplit(receiver.url)
        assert parts.hostname is not None and parts.port is not None
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(
                f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode()
                + b'{"id": "evt_'
            )
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(100) == b""  # no answer: the sender is gone
    assert receiver.cut_off_requests == 1 and receiver.requests == 1
    assert receiver.bad_signatures == 0 and receiver.delivered() == 0
