"""Properties every pricer keeps, checked with hypothesis."""

from __future__ import annotations

from decimal import Decimal as D
from decimal import localcontext
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rating.pricing import ChargeUsage, price, validate_properties


def _decimals(max_int: int = 10**6, max_places: int = 12) -> st.SearchStrategy[D]:
    """Non-negative decimals with at most `max_places` places (as prices may have)."""
    return st.builds(
        lambda n, places: D(n).scaleb(-places),
        st.integers(min_value=0, max_value=max_int * 10**6),
        st.integers(min_value=6, max_value=max_places),
    ) | st.integers(min_value=0, max_value=max_int).map(D)


quantities = _decimals(max_int=10**7)

# The tests' own arithmetic must be exact too: the default 28-digit context would round
# sums and products of 12-decimal prices and large quantities.
TEST_PRECISION = 200
prices = _decimals(max_int=100)
rates = st.integers(min_value=0, max_value=100 * 10**4).map(lambda n: D(n).scaleb(-4))


def _as_api_value(value: D) -> st.SearchStrategy[Any]:
    """The many ways a client may send one decimal: string, padded, exponent, int."""
    options: list[Any] = [str(value), f"{value:f}", f" {value} ", value]
    if value == value.to_integral_value():
        options.append(int(value))
    return st.sampled_from(options)


@st.composite
def tiers(draw: st.DrawFn, price_key: str = "unitAmount") -> dict[str, Any]:
    bounds = sorted(draw(st.sets(quantities.filter(lambda q: q > 0), max_size=4)))
    price_strategy = rates if price_key == "rate" else prices
    raw = []
    for up_to in [*bounds, None]:
        tier: dict[str, Any] = {
            "upTo": None if up_to is None else draw(_as_api_value(up_to)),
            price_key: draw(_as_api_value(draw(price_strategy))),
        }
        if draw(st.booleans()):
            tier["flatAmount"] = draw(_as_api_value(draw(prices)))
        raw.append(tier)
    return {"tiers": raw}


@given(tiers(), quantities)
def test_graduated_is_never_negative(props: dict[str, Any], q: D) -> None:
    assert price("graduated", props, ChargeUsage(q)).amount >= 0


@given(tiers(), quantities, quantities)
def test_graduated_is_non_decreasing(props: dict[str, Any], a: D, b: D) -> None:
    low, high = sorted((a, b))
    assert (
        price("graduated", props, ChargeUsage(low)).amount
        <= price("graduated", props, ChargeUsage(high)).amount
    )


@given(tiers(price_key="rate"), quantities, quantities)
def test_graduated_percentage_is_non_negative_and_non_decreasing(
    props: dict[str, Any], a: D, b: D
) -> None:
    low, high = sorted((a, b))
    low_amount = price("graduated_percentage", props, ChargeUsage(low)).amount
    assert 0 <= low_amount <= price("graduated_percentage", props, ChargeUsage(high)).amount


@given(tiers(), quantities)
def test_volume_is_never_negative(props: dict[str, Any], q: D) -> None:
    assert price("volume", props, ChargeUsage(q)).amount >= 0


@given(tiers(), quantities)
def test_graduated_with_one_tier_equals_volume_with_one_tier(props: dict[str, Any], q: D) -> None:
    single = {"tiers": props["tiers"][-1:]}
    assert (
        price("graduated", single, ChargeUsage(q)).amount
        == price("volume", single, ChargeUsage(q)).amount
    )


@given(prices, quantities, quantities, st.integers(min_value=0, max_value=1000))
def test_per_unit_is_linear(unit: D, a: D, b: D, k: int) -> None:
    props = {"unitAmount": str(unit)}

    def cost(q: D) -> D:
        return price("per_unit", props, ChargeUsage(q)).amount

    with localcontext(prec=TEST_PRECISION):
        assert cost(a + b) == cost(a) + cost(b)
        assert cost(a * k) == cost(a) * k
        assert cost(D(0)) == 0


packages = st.fixed_dictionaries(
    {
        "amount": prices.map(str),
        "packageSize": quantities.filter(lambda q: q > 0).map(str),
        "freeUnits": quantities.map(str),
    }
)


@given(packages, quantities, quantities)
def test_package_is_monotone_and_a_multiple_of_the_amount(
    props: dict[str, str], a: D, b: D
) -> None:
    low, high = sorted((a, b))
    low_amount = price("package", props, ChargeUsage(low)).amount
    high_amount = price("package", props, ChargeUsage(high)).amount
    assert 0 <= low_amount <= high_amount
    amount = D(props["amount"])
    with localcontext(prec=TEST_PRECISION):
        for total in (low_amount, high_amount):
            if amount:
                assert total % amount == 0
            else:
                assert total == 0


@given(packages, quantities)
def test_package_buys_enough_units(props: dict[str, str], q: D) -> None:
    # The packages paid for cover the billable units, and one package fewer would not.
    amount, size, free = (D(props[k]) for k in ("amount", "packageSize", "freeUnits"))
    if amount == 0:
        return
    with localcontext(prec=TEST_PRECISION):
        count = price("package", props, ChargeUsage(q)).amount / amount
        billable = max(q - free, D(0))
        assert count == count.to_integral_value()
        assert count * size >= billable
        assert count == 0 or (count - 1) * size < billable


@st.composite
def percentages(draw: st.DrawFn) -> dict[str, Any]:
    props: dict[str, Any] = {"rate": str(draw(rates))}
    if draw(st.booleans()):
        props["fixedAmount"] = str(draw(prices))
    if draw(st.booleans()):
        props["freeUnitsPerEvents"] = draw(st.integers(min_value=0, max_value=6))
    if draw(st.booleans()):
        props["freeUnitsPerTotalAggregation"] = str(draw(quantities))
    bounds = sorted(draw(st.lists(prices, min_size=2, max_size=2)))
    if draw(st.booleans()):
        props["perTransactionMin"] = str(bounds[0])
    if draw(st.booleans()):
        props["perTransactionMax"] = str(bounds[1])
    return props


transactions = st.lists(_decimals(max_int=10**4), min_size=1, max_size=12).filter(
    lambda amounts: amounts[0] > 0
)


def _usage(amounts: list[D]) -> ChargeUsage:
    return ChargeUsage(sum(amounts, D(0)), len(amounts), tuple(amounts))


@given(percentages(), transactions)
def test_percentage_is_never_negative(props: dict[str, Any], amounts: list[D]) -> None:
    assert price("percentage", props, _usage(amounts)).amount >= 0


@given(percentages(), transactions)
def test_percentage_fee_of_each_non_free_transaction_is_within_min_and_max(
    props: dict[str, Any], amounts: list[D]
) -> None:
    # Fees are causal (a transaction's fee depends only on it and those before it), so
    # the fee of transaction i is the price of the first i + 1 minus the first i.
    free_events = props.get("freeUnitsPerEvents") or None
    free_total = D(props.get("freeUnitsPerTotalAggregation", "0")) or None
    low = D(props["perTransactionMin"]) if "perTransactionMin" in props else None
    high = D(props["perTransactionMax"]) if "perTransactionMax" in props else None
    with localcontext(prec=TEST_PRECISION):
        _check_fees(props, amounts, free_events, free_total, low, high)


def _check_fees(
    props: dict[str, Any],
    amounts: list[D],
    free_events: int | None,
    free_total: D | None,
    low: D | None,
    high: D | None,
) -> None:
    running_total = D(0)
    for i, value in enumerate(amounts):
        running_total += value
        fee = (
            price("percentage", props, _usage(amounts[: i + 1])).amount
            - price("percentage", props, _usage(amounts[:i])).amount
        )
        entirely_free = (
            (free_events is not None or free_total is not None)
            and (free_events is None or i < free_events)
            and (free_total is None or running_total <= free_total)
        )
        if entirely_free:
            assert fee == 0
        else:
            assert low is None or fee >= low
            assert high is None or fee <= high
            assert fee >= 0


@given(rates, quantities, quantities)
def test_percentage_with_only_a_free_amount_is_rate_of_the_rest(rate: D, q: D, free: D) -> None:
    props = {"rate": str(rate), "freeUnitsPerTotalAggregation": str(free)}
    with localcontext(prec=TEST_PRECISION):
        expected = max(q - free, D(0)) * rate / 100
    assert price("percentage", props, ChargeUsage(q)).amount == expected


@given(
    st.one_of(
        st.tuples(st.just("per_unit"), _decimals().flatmap(_as_api_value)).map(
            lambda t: (t[0], {"unitAmount": t[1]})
        ),
        tiers().map(lambda p: ("graduated", p)),
        tiers().map(lambda p: ("volume", p)),
        tiers(price_key="rate").map(lambda p: ("graduated_percentage", p)),
        packages.map(lambda p: ("package", p)),
        percentages().map(lambda p: ("percentage", p)),
    ),
    quantities,
)
def test_validate_properties_is_idempotent_and_keeps_prices(
    model_and_props: tuple[str, dict[str, Any]], q: D
) -> None:
    model, props = model_and_props
    once = validate_properties(model, props)
    assert validate_properties(model, once) == once
    usage = ChargeUsage(q, event_count=3, event_amounts=(q, D(0), D(0)))
    assert price(model, once, usage) == price(model, props, usage)
