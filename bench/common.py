"""What the benchmarks share: peak RSS, phase timers, the machine, and RESULTS.md.

Each benchmark owns one section of bench/RESULTS.md, between two HTML comment markers,
and replaces it in place on every run; the machine section is rewritten by whichever
benchmark ran last. Nothing else in the file is touched.
"""

from __future__ import annotations

import gc
import os
import platform
import re
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ROOT = RESULTS.parent.parent

_TITLE = "# Benchmark results"
_INTRO = (
    "Written by the benchmarks themselves (`make bench`, or `make bench-ingest` and\n"
    "`make bench-billrun`): each run replaces its own section below, in place."
)
_ORDER = ("machine", "ingest", "billrun", "billrun-1m", "csv-export", "webhooks")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def current_rss_mib() -> float:
    """Resident set size of this process now, in MiB (from /proc/self/statm)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Phases:
    """Wall-clock seconds and call counts per named phase (phases may nest)."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_lines() -> list[str]:
    """The machine and the versions that the figures depend on, as Markdown bullets."""
    import chdb

    from infra.kafka_local import KAFKA_VERSION

    engine = getattr(chdb, "engine_version", "unknown")
    return [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs (`nproc`)",
        f"- RAM: {_ram_gib():.1f} GiB",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({sys.implementation.name})",
        f"- ClickHouse engine {engine} in-process (chdb-core {_version('chdb-core')}, "
        f"clickhouse-connect {_version('clickhouse-connect')})",
        f"- Apache Kafka {KAFKA_VERSION} (local broker, infra/kafka_local.py), "
        f"aiokafka {_version('aiokafka')}, faust-streaming {_version('faust-streaming')}",
        f"- SQLAlchemy {_version('sqlalchemy')} on SQLite {_sqlite_version()}, "
        f"polars {_version('polars')}, pyarrow {_version('pyarrow')}",
    ]


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def _sections(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in re.finditer(
        r"<!-- bench:([\w-]+):start -->\n(.*?)<!-- bench:\1:end -->", text, flags=re.DOTALL
    ):
        found[match.group(1)] = match.group(2)
    return found


def write_section(name: str, body: str, *, path: Path = RESULTS) -> None:
    """Replace the section `name` (and the machine section) of RESULTS.md in place."""
    text = path.read_text() if path.exists() else ""
    sections = _sections(text)
    sections["machine"] = (
        f"## Machine\n\nMeasured on (as of the last benchmark run, {now_text()}):\n\n"
        + "\n".join(machine_lines())
        + "\n"
    )
    sections[name] = body.rstrip("\n") + "\n"
    if not text.strip():
        text = f"{_TITLE}\n\n{_INTRO}\n"
    for key in (*_ORDER, *sorted(set(sections) - set(_ORDER))):
        if key not in sections:
            continue
        start, end = _markers(key)
        block = f"{start}\n{sections[key]}{end}"
        pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), flags=re.DOTALL)
        found = pattern.search(text)
        if found:
            text = text[: found.start()] + block + text[found.end() :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text if text.endswith("\n") else text + "\n")


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class GcPauses:
    """Time the cyclic garbage collector held the process, and its full collections."""

    seconds: float = 0.0
    full: int = 0


@contextmanager
def gc_pauses() -> Iterator[GcPauses]:
    """Measure the collector's pauses while the block runs (through `gc.callbacks`)."""
    pauses = GcPauses()
    started = 0.0

    def callback(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
            return
        pauses.seconds += time.perf_counter() - started
        if info.get("generation") == 2:
            pauses.full += 1

    gc.callbacks.append(callback)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(callback)
