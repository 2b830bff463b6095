"""Liveness and readiness bodies."""

from __future__ import annotations

from api.schemas.common import Public


class Liveness(Public):
    status: str


class Readiness(Public):
    status: str  # ready | not ready
    checks: dict[str, str]  # ledger, clickhouse, kafka: "ok" or what failed
