"""One way to reach ClickHouse: clickhouse-connect, over HTTP or in-process (chDB).

`chdb:///path` runs the real ClickHouse engine inside this process; an http(s) DSN
talks to a server. Everything else in the code is the same for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect

from infra.migrate import migrate_clickhouse


def connect(dsn: str, database: str | None = None) -> Any:
    """A clickhouse-connect client for the DSN (database created by migrations)."""
    # clickhouse-connect imports pandas lazily, on the first insert (2–3 s here): pay it
    # when the process opens its stores, not inside its first bill run or request.
    from clickhouse_connect.driver import options

    _ = options.pd
    if dsn.startswith("chdb:"):
        path = dsn.split("chdb://", 1)[1]
        if path and path not in ("memory", ":memory:"):
            Path(path).mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=dsn)
    return clickhouse_connect.get_client(
        dsn=dsn, database=database or "default", compress=False, autogenerate_session_id=False
    )


def connect_and_migrate(dsn: str, database: str) -> Any:
    client = connect(dsn)
    migrate_clickhouse(client, database)
    return client
