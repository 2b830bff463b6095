"""The publisher's partition of an envelope is the partition Kafka's default
partitioner gives its key (a consumer keyed by customer sees one ordered stream),
memoized without limit growth."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from streams import publisher as events


@given(keys=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=50),
       count=st.integers(min_value=1, max_value=64))  # fmt: skip
def test_memoized_partitions_are_the_default_partitioners(keys: list[bytes], count: int) -> None:
    partitions = list(range(count))
    reference = DefaultPartitioner()
    for key in keys + keys:  # the second round comes from the cache
        assert events.partition_of(key, partitions) == reference(key, partitions, partitions)


def test_the_cache_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(events, "_PARTITION_CACHE_SIZE", 10)
    events._partition_cache.clear()
    for i in range(35):
        events.partition_of(f"t/c{i}".encode(), [0, 1, 2, 3])
    assert len(events._partition_cache) <= 10
