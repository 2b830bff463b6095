"""Reading an exposition the way Prometheus does: with prometheus_client's parser."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str | bytes) -> Series:
    """{(sample name, labels): value} of an exposition; fails on a malformed one."""
    if isinstance(text, bytes):
        text = text.decode()
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in out, f"series {key} twice"
            out[key] = sample.value
    return out


def value(series: Series, name: str, labels: Mapping[str, str] | None = None) -> float:
    """One series' value; 0 when it is not (yet) there."""
    return series.get((name, frozenset((labels or {}).items())), 0.0)


def families(text: str | bytes) -> dict[str, str]:
    """{family name: type} of an exposition."""
    if isinstance(text, bytes):
        text = text.decode()
    return {f.name: f.type for f in text_string_to_metric_families(text)}
