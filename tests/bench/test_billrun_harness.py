"""The bill-run benchmark's own bookkeeping (pure: no store is opened)."""

from __future__ import annotations

from collections import Counter

from bench.billrun import expected_by_subscription
from bench.billrun_setup import (
    PLANS,
    SAMPLE_PER_PLAN,
    events_per_subscription_range,
    plan_chunks,
    sampled,
)
from bench.common import _sections


def test_plans_do_not_depend_on_the_chunk_size() -> None:
    small = [p for chunk in plan_chunks(1_000, 7) for p in chunk]
    large = [p for chunk in plan_chunks(1_000, 100_000) for p in chunk]
    assert small == large
    assert len(small) == 1_000


def test_samples_are_four_per_plan_on_the_plan_each_step_assigns() -> None:
    plans = [p for chunk in plan_chunks(5_000, 20_000) for p in chunk]
    samples = sampled(5_000)
    assert Counter(samples.values()) == {plan: SAMPLE_PER_PLAN for plan in range(len(PLANS))}
    assert all(plans[index] == plan for index, plan in samples.items())


def test_events_per_subscription_spread_around_the_mean() -> None:
    assert events_per_subscription_range(20) == (10, 30)
    assert events_per_subscription_range(3) == (2, 4)
    assert events_per_subscription_range(1) == (1, 1)


def test_expected_lines_are_keyed_by_the_ledgers_charge_ids() -> None:
    events = {
        "expected": {"7": {"plan": "growth", "base": "49.00", "#1": "2.50", "total": "51.50"}}
    }
    ledger = {
        "plans": [{"code": "growth", "id": "plan_1", "charges": ["ch_a", "ch_b"]}],
        "samples": {"sub_7": 7},
    }
    assert expected_by_subscription(events, ledger) == {
        "sub_7": {"base": "49.00", "ch_b": "2.50", "total": "51.50"}
    }


def test_results_sections_may_have_hyphenated_names() -> None:
    text = "<!-- bench:billrun-1m:start -->\nbig\n<!-- bench:billrun-1m:end -->\n"
    assert _sections(text) == {"billrun-1m": "big\n"}
