"""The conftest guard: an unmarked test that opens Kafka, ClickHouse or the ledger fails.

This module is unmarked, so its test bodies run guarded, as any pure test does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.helpers import guard

Failed = pytest.fail.Exception


def refused(marker: str) -> pytest.RaisesContext[BaseException]:
    return pytest.raises(Failed, match=rf"mark it `@pytest\.mark\.{marker}`")


def test_sqlalchemy_engine_connect_needs_ledger():
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")  # building an engine opens nothing
    with refused("ledger"):
        engine.connect()


def test_sqlite3_connect_needs_ledger():
    with refused("ledger"):
        sqlite3.connect(":memory:")


def test_psycopg_connect_needs_ledger():
    import psycopg

    with refused("ledger"):
        psycopg.connect("postgresql://nobody@127.0.0.1:9/none", connect_timeout=1)
    with refused("ledger"):
        psycopg.Connection.connect("postgresql://nobody@127.0.0.1:9/none", connect_timeout=1)


def test_clickhouse_client_needs_clickhouse():
    import clickhouse_connect

    with refused("clickhouse"):
        clickhouse_connect.get_client(dsn="chdb://memory")
    with refused("clickhouse"):
        clickhouse_connect.get_client(host="127.0.0.1", port=9)


def test_chdb_entry_points_need_clickhouse():
    import chdb
    import chdb.session

    with refused("clickhouse"):
        chdb.query("SELECT 1")
    with refused("clickhouse"):
        chdb.connect(":memory:")
    with refused("clickhouse"):
        chdb.session.Session()


def test_kafka_client_needs_kafka():
    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")
        try:
            await producer.start()
        finally:
            await producer.stop()

    with refused("kafka"):
        asyncio.run(produce())


def test_local_kafka_broker_needs_kafka(tmp_path: Path):
    from infra.kafka_local import LocalKafkaBroker

    with refused("kafka"):
        LocalKafkaBroker(tmp_path / "kafka").start()


def test_other_threads_are_not_guarded():
    # The live stack's server and stream worker run in their own threads.
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(sqlite3.connect(":memory:").close()))
    thread.start()
    thread.join()
    assert result == [None]


CONFTEST = """
from tests.conftest import pytest_configure, pytest_runtest_call, pytest_runtest_setup
import pytest

@pytest.fixture
def ledger_url():
    raise AssertionError("the guard fails the test before this fixture runs")
"""


def test_unmarked_tests_fail_and_marked_ones_pass(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_pure="""
        import sqlite3

        def test_opens_sqlite():
            sqlite3.connect(":memory:").close()

        def test_asks_for_the_ledger(ledger_url):
            pass

        def test_pure():
            assert 1 + 1 == 2
        """,
        test_marked="""
        import sqlite3
        import pytest

        pytestmark = pytest.mark.ledger

        def test_opens_sqlite():
            sqlite3.connect(":memory:").close()
        """,
    )
    pytester.makeini("[pytest]\nmarkers =\n    ledger: ledger\n")
    with guard.unguarded():  # the inner session guards its own tests
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_pure.py::test_asks_for_the_ledger asks for the `ledger_url` fixture*",
            "*test_pure.py::test_opens_sqlite opened a ledger database (sqlite3)*",
        ]
    )
