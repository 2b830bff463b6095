"""The floor of a bill run: the I/O it cannot avoid, measured raw, in the same invocation.

    floor = the run's ClickHouse quantity queries, replayed verbatim (same SQL, same
            parameters, same billing intervals), results fetched as bytes and not decoded
          + a raw bulk insert of the invoice and line rows the run wrote (read back from
            the ledger, untimed) into scratch copies of `invoices` / `invoice_lines`
            (same columns, keys, indexes and foreign keys): COPY on PostgreSQL through
            psycopg's `cursor.copy`, executemany on SQLite, one transaction per chunk.

The run records its queries through `RecordingClient`; the deletes of its billing
intervals are deferred until the floor has replayed the queries on the same rows (the
delete is a ~10 ms lightweight mutation, so the run loses nothing measurable).
The floor runs in its own child process after the run, so its memory never counts
towards the run's peak.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine

from bench.ledger_bulk import driver_connection, raw_insert

INSERT_CHUNK = 10_000  # rows per COPY / executemany, one transaction each
_QUERY_METHODS = (
    "query",
    "query_arrow",
    "query_df",
    "query_np",
    "query_df_arrow",
    "raw_query",
    "query_arrow_stream",
    "query_df_stream",
    "query_np_stream",
    "query_row_block_stream",
    "query_column_block_stream",
    "query_rows_stream",
    "raw_stream",
)


# The deletes of a run's intervals and the drop of its staged events wait for the floor.
_DEFERRED = (
    r"\s*((DELETE\s+FROM|ALTER\s+TABLE)\s+\S*billing_intervals\b"
    r"|DROP\s+TABLE\s+(IF\s+EXISTS\s+)?\S*billing_events_)"
)
_STAGE = r"\s*CREATE\s+TABLE\s+\S*billing_events_"


class RecordingClient:
    """A clickhouse-connect client that records the quantity queries of a bill run
    (every query reading billing_intervals) and defers the deletes of its intervals."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries: list[tuple[str, str, dict[str, Any]]] = []
        self.deferred: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in _QUERY_METHODS:
            return attribute

        def recorded(query: str, *args: Any, **kwargs: Any) -> Any:
            if "billing_intervals" in query:
                self.queries.append((name, query, dict(kwargs.get("parameters") or {})))
            return attribute(query, *args, **kwargs)

        return recorded

    def command(self, cmd: str, *args: Any, **kwargs: Any) -> Any:
        parameters = dict(kwargs.get("parameters") or {})
        if re.match(_DEFERRED, cmd, re.I):
            self.deferred.append((cmd, parameters))
            return None
        if re.match(_STAGE, cmd, re.I):
            # Staging the run's events is part of its quantity queries: replayed too.
            self.queries.append(("command", cmd, parameters))
        return self._client.command(cmd, *args, **kwargs)


def replay_queries(
    client: Any, queries: list[tuple[str, str, dict[str, Any]]]
) -> tuple[float, list[tuple[float, int]]]:
    """Seconds of all queries and (seconds, result bytes) of each; results are not decoded."""
    client.query("SELECT 1")  # the first statement of a process pays a one-off start
    total = 0.0
    each = []
    for method, sql, parameters in queries:
        if method == "command":
            # The run's staging of its events: replayed into a fresh table of that name.
            name = re.match(r"\s*CREATE\s+TABLE\s+(\S+)", sql, re.I)
            assert name is not None
            client.command(f"DROP TABLE IF EXISTS {name.group(1)}")
            started = time.perf_counter()
            client.command(sql, parameters=parameters)
            total += time.perf_counter() - started
            each.append((time.perf_counter() - started, 0))
            continue
        fmt = "Arrow" if "arrow" in method or method.endswith("df") else "Native"
        started = time.perf_counter()
        data = client.raw_query(sql, parameters=parameters, fmt=fmt)
        seconds = time.perf_counter() - started
        total += seconds
        each.append((seconds, len(data)))
    return total, each


def run_deferred(client: Any, deferred: list[tuple[str, dict[str, Any]]]) -> None:
    for cmd, parameters in deferred:
        client.command(cmd, parameters=parameters)


# -- the bulk insert ---------------------------------------------------------------------

SCRATCH = {"invoices": "bench_floor_invoices", "invoice_lines": "bench_floor_invoice_lines"}


def _rename(sql: str) -> str:
    for table, scratch in SCRATCH.items():
        sql = re.sub(rf'(?<![\w"]){table}(?![\w"])|"{table}"', scratch, sql)
    return sql


def _create_scratch(connection: Any, dialect: str) -> None:
    """Empty copies of invoices and invoice_lines with their keys, indexes and FKs."""
    _drop_scratch(connection, dialect)
    cursor = connection.cursor()
    try:
        if dialect == "postgresql":
            for table, scratch in SCRATCH.items():
                cursor.execute(f"CREATE TABLE {scratch} (LIKE {table} INCLUDING ALL)")
            for table, scratch in SCRATCH.items():
                cursor.execute(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype = 'f'",
                    (table,),
                )
                for (definition,) in cursor.fetchall():
                    cursor.execute(f"ALTER TABLE {scratch} ADD {_rename(definition)}")
            connection.commit()
            return
        for table in SCRATCH:
            cursor.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
                "ORDER BY type = 'index'",
                (table,),
            )
            for kind, name, sql in cursor.fetchall():
                if kind == "index":
                    sql = sql.replace(name, f"bench_floor_{name}", 1)
                cursor.execute(_rename(sql))
    finally:
        cursor.close()


def _drop_scratch(connection: Any, dialect: str) -> None:
    cursor = connection.cursor()
    try:
        for scratch in reversed(SCRATCH.values()):
            cursor.execute(f"DROP TABLE IF EXISTS {scratch}")
        if dialect == "postgresql":
            connection.commit()
    finally:
        cursor.close()


def _read_back(engine: Engine, sql: str, parameters: tuple[Any, ...]) -> Iterator[Any]:
    """(column names, then row chunks) of a query, streamed (server-side cursor on PostgreSQL)."""
    pooled, connection = driver_connection(engine)
    try:
        if engine.dialect.name == "postgresql":
            cursor = connection.cursor(name="bench_floor_read")
            cursor.itersize = INSERT_CHUNK
            cursor.execute(sql.replace("?", "%s"), parameters)
        else:
            cursor = connection.cursor()
            cursor.execute(sql, parameters)
        first = cursor.fetchmany(INSERT_CHUNK)
        yield [d[0] for d in cursor.description]
        chunk = first
        while chunk:
            yield chunk
            chunk = cursor.fetchmany(INSERT_CHUNK)
        cursor.close()
        if engine.dialect.name == "postgresql":
            connection.rollback()
    finally:
        pooled.close()


def bulk_insert_floor(engine: Engine, bill_run_id: str) -> dict[str, Any]:
    """Seconds to bulk insert the run's invoices and lines into scratch copies (see module)."""
    dialect = engine.dialect.name
    pooled, connection = driver_connection(engine)
    try:
        _create_scratch(connection, dialect)
        # JSON is read as its text: the driver would otherwise hand back a dict.
        json_text = "::text" if dialect == "postgresql" else ""
        columns = {
            "invoices": "*",
            "invoice_lines": ", ".join(
                f"l.{c}{json_text} AS {c}" if c == "group_values" else f"l.{c}"
                for c in _columns(connection, dialect, "invoice_lines")
            ),
        }
        queries = {
            "invoices": f"SELECT {columns['invoices']} FROM invoices WHERE bill_run_id = ?",
            "invoice_lines": f"SELECT {columns['invoice_lines']} FROM invoice_lines l "
            "JOIN invoices i ON i.id = l.invoice_id WHERE i.bill_run_id = ?",
        }
        seconds: dict[str, float] = {}
        rows: dict[str, int] = {}
        for table, sql in queries.items():
            stream = _read_back(engine, sql, (bill_run_id,))
            names = next(stream)
            seconds[table] = 0.0
            rows[table] = 0
            for chunk in stream:
                started = time.perf_counter()
                rows[table] += raw_insert(connection, dialect, SCRATCH[table], names, chunk)
                seconds[table] += time.perf_counter() - started
        _drop_scratch(connection, dialect)
    finally:
        pooled.close()
    return {"seconds": seconds, "rows": rows}


def _columns(connection: Any, dialect: str, table: str) -> list[str]:
    cursor = connection.cursor()
    try:
        if dialect == "postgresql":
            cursor.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            )
            names = [r[0] for r in cursor.fetchall()]
            connection.commit()
            return names
        cursor.execute(f"PRAGMA table_info({table})")
        return [r[1] for r in cursor.fetchall()]
    finally:
        cursor.close()
