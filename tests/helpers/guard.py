"""Unmarked tests stay pure: opening Kafka, ClickHouse or the ledger from one fails it.

`install()` (called once per session by tests/conftest.py) wraps the points where a
connection is opened: SQLAlchemy `Engine.connect`, `sqlite3.connect`, `psycopg.connect`,
clickhouse-connect's client factory and query methods, chDB's own entry points, and
aiokafka's connection factory and client bootstrap, plus starting a local broker. The
wrappers do nothing unless a `guarding(...)` block is open in the calling thread; then
they fail the test with the marker it lacks. Only the test's own thread is guarded: the
live stack's server and stream worker, started by an earlier marked test, run in other
threads and keep working.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

# A test carrying any of these may open what it likes.
MARKERS = frozenset({"kafka", "clickhouse", "ledger", "e2e"})

# Session fixtures that bring the real services; an unmarked test asking for one fails
# before the fixture starts anything.
FIXTURE_MARKERS = {
    "stack": "e2e",
    "kafka_broker": "kafka",
    "kafka_bootstrap": "kafka",
    "kafka_topic": "kafka",
    "clickhouse": "clickhouse",
    "usage_env": "clickhouse",
    "ledger_url": "ledger",
}

_state = threading.local()
_installed = False


class _Guarded:
    def __init__(self, test: str) -> None:
        self.test = test


def message(test: str, what: str, marker: str, verb: str = "opened") -> str:
    """The failure an unmarked test gets for opening `what`."""
    return (
        f"{test} {verb} {what} but carries no kafka/clickhouse/ledger/e2e marker; "
        f"mark it `@pytest.mark.{marker}` (or `pytestmark = pytest.mark.{marker}` for the "
        f"module), or keep the test pure"
    )


def _check(what: str, marker: str) -> None:
    guarded: _Guarded | None = getattr(_state, "guarded", None)
    if guarded is not None:
        pytest.fail(message(guarded.test, what, marker), pytrace=False)


@contextmanager
def guarding(test: str) -> Iterator[None]:
    """While the block runs, this thread may not open Kafka, ClickHouse or the ledger."""
    install()
    previous = getattr(_state, "guarded", None)
    _state.guarded = _Guarded(test)
    try:
        yield
    finally:
        _state.guarded = previous


@contextmanager
def unguarded() -> Iterator[None]:
    """Lift the guard in this thread for the block (for fixtures of pure tests that must,
    e.g., read a file through SQLite; none do today)."""
    previous = getattr(_state, "guarded", None)
    _state.guarded = None
    try:
        yield
    finally:
        _state.guarded = previous


def _sync(fn: Callable[..., Any], what: str, marker: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check(what, marker)
        return fn(*args, **kwargs)

    return guarded


def _async(fn: Callable[..., Any], what: str, marker: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        # Checked when the coroutine is created, in the caller's thread.
        _check(what, marker)
        return fn(*args, **kwargs)

    return guarded


def _wrap(owner: Any, name: str, what: str, marker: str, *, is_async: bool = False) -> None:
    original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    if isinstance(original, classmethod):
        inner = _sync(original.__func__, what, marker)
        setattr(owner, name, classmethod(inner))
        return
    setattr(owner, name, (_async if is_async else _sync)(original, what, marker))


def _guard_new(cls: type, what: str, marker: str) -> None:
    # Refused in __new__, so no half-built object is left for its __del__ to trip on.
    original = cls.__new__

    def guarded_new(klass: type, *args: Any, **kwargs: Any) -> Any:
        _check(what, marker)
        if original is object.__new__:
            return original(klass)
        return original(klass, *args, **kwargs)

    cls.__new__ = staticmethod(guarded_new)  # type: ignore[assignment]


def install() -> None:
    """Wrap every connection point once per process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True

    import sqlalchemy.engine

    _wrap(sqlalchemy.engine.Engine, "connect", "a ledger database (SQLAlchemy)", "ledger")
    _wrap(sqlalchemy.engine.Engine, "raw_connection", "a ledger database (SQLAlchemy)", "ledger")
    _wrap(sqlite3, "connect", "a ledger database (sqlite3)", "ledger")

    import psycopg

    _wrap(psycopg.Connection, "connect", "a ledger database (psycopg)", "ledger")
    psycopg.connect = psycopg.Connection.connect  # the module alias of the classmethod

    import clickhouse_connect
    import clickhouse_connect.driver
    from clickhouse_connect.driver._backendclient import SyncBackendClient

    what = "a ClickHouse client (clickhouse-connect)"
    _wrap(clickhouse_connect, "get_client", what, "clickhouse")
    _wrap(clickhouse_connect.driver, "create_client", what, "clickhouse")
    for method in ("_query_with_context", "data_insert", "raw_insert", "command", "raw_query"):
        _wrap(SyncBackendClient, method, what, "clickhouse")

    import chdb
    import chdb.session

    _wrap(chdb, "connect", "a chDB connection", "clickhouse")
    _wrap(chdb, "query", "a chDB query", "clickhouse")
    _guard_new(chdb.session.Session, "a chDB session", "clickhouse")

    import aiokafka.client
    import aiokafka.conn

    what = "a Kafka connection (aiokafka)"
    _wrap(aiokafka.conn, "create_conn", what, "kafka", is_async=True)
    _wrap(aiokafka.client, "create_conn", what, "kafka", is_async=True)
    _wrap(aiokafka.client.AIOKafkaClient, "bootstrap", what, "kafka", is_async=True)

    from infra.kafka_local import LocalKafkaBroker

    _wrap(LocalKafkaBroker, "start", "a Kafka broker", "kafka")


def is_marked(item: pytest.Item) -> bool:
    """Whether the test carries one of the service markers."""
    return any(m.name in MARKERS for m in item.iter_markers())


def service_fixture(item: pytest.Item) -> tuple[str, str] | None:
    """(fixture, marker) of the first service fixture an unmarked test asks for, if any."""
    if is_marked(item):
        return None
    for fixture in getattr(item, "fixturenames", ()):
        if fixture in FIXTURE_MARKERS:
            return fixture, FIXTURE_MARKERS[fixture]
    return None
