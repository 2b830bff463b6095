"""Features, plan entitlements, subscription overrides and the customer's merged
entitlements, through the HTTP API on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.helpers.ledger_api import ApiClient

pytestmark = pytest.mark.ledger

SEATS = {"code": "seats", "name": "Seats", "type": "integer"}
SSO = {"code": "sso", "type": "boolean"}
TIER = {"code": "tier", "name": "Support tier", "type": "select", "options": ["basic", "gold"]}


def feature(api: ApiClient, code: str = "workspace", **fields: Any) -> dict[str, Any]:
    body = {"code": code, "name": code.title(), "privileges": [SEATS, SSO, TIER]}
    body.update(fields)
    result: dict[str, Any] = api.ok("POST", "/features", json=body)
    return result


def plan(api: ApiClient, code: str, entitlements: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "code": code,
        "name": code.title(),
        "currency": "USD",
        "interval": "monthly",
        "baseFee": "10",
        "entitlements": entitlements,
    }
    result: dict[str, Any] = api.ok("POST", "/plans", json=body)
    return result


def subscribe(api: ApiClient, plan_code: str, customer: str = "acme", **fields: Any) -> str:
    body = {"customerId": customer, "planCode": plan_code, "startDate": "2026-10-01T00:00:00Z"}
    body.update(fields)
    return str(api.ok("POST", "/subscriptions", json=body)["id"])


def granted(api: ApiClient, customer: str = "acme") -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api.ok("GET", f"/customers/{customer}/entitlements")[
        "entitlements"
    ]
    return result


def test_a_feature_round_trips_with_its_privileges(api: ApiClient) -> None:
    created = feature(api, description="The workspace")
    assert created["code"] == "workspace"
    assert created["description"] == "The workspace"
    assert created["privileges"] == [
        {"code": "seats", "name": "Seats", "type": "integer", "options": None},
        {"code": "sso", "name": None, "type": "boolean", "options": None},
        {"code": "tier", "name": "Support tier", "type": "select", "options": ["basic", "gold"]},
    ]
    assert created["createdAt"] == "2026-11-01T09:00:00Z"
    assert api.ok("GET", "/features/workspace") == created
    assert api.ok("POST", "/features", json={"code": "sla", "name": "SLA"})["privileges"] == []


@pytest.mark.parametrize(
    ("privileges", "status"),
    [
        ([{"code": "t", "type": "select"}], 422),
        ([{"code": "t", "type": "select", "options": []}], 422),
        ([{"code": "t", "type": "select", "options": ["a", "a"]}], 422),
        ([{"code": "b", "type": "boolean", "options": ["x"]}], 422),
        ([{"code": "n", "type": "float"}], 422),
        ([SEATS, SEATS], 422),
        ([{"code": "bad code", "type": "boolean"}], 422),
    ],
)
def test_bad_privileges_are_refused(api: ApiClient, privileges: Any, status: int) -> None:
    api.error(
        "POST", "/features", status, json={"code": "f", "name": "F", "privileges": privileges}
    )
    api.error("GET", "/features/f", 404)


def test_a_code_twice_is_a_conflict_and_lists_page_newest_first(api: ApiClient) -> None:
    for i, code in enumerate(("a", "b", "c")):
        api.clock.set(api.clock.now().replace(minute=i))
        feature(api, code)
    assert (
        api.error("POST", "/features", 409, json={"code": "a", "name": "A"})["code"] == "duplicate"
    )
    first = api.ok("GET", "/features", params={"limit": 2})
    assert [f["code"] for f in first["data"]] == ["c", "b"]
    rest = api.ok("GET", "/features", params={"limit": 2, "cursor": first["nextCursor"]})
    assert ([f["code"] for f in rest["data"]], rest["nextCursor"]) == (["a"], None)


def test_plans_grant_typed_values(api: ApiClient) -> None:
    feature(api)
    feature(api, "sla", privileges=[])
    created = plan(
        api,
        "pro",
        [
            {"feature": "workspace", "values": {"tier": "gold", "seats": 10, "sso": True}},
            {"feature": "sla"},
        ],
    )
    assert created["entitlements"] == [
        {"feature": "sla", "name": "Sla", "values": {}},
        {
            "feature": "workspace",
            "name": "Workspace",
            "values": {"seats": 10, "sso": True, "tier": "gold"},
        },
    ]
    assert api.ok("GET", "/plans/pro")["entitlements"] == created["entitlements"]


@pytest.mark.parametrize(
    "values",
    [
        {"seats": "10"},
        {"seats": True},
        {"seats": 1.5},
        {"sso": 1},
        {"sso": "yes"},
        {"tier": "platinum"},
        {"tier": 1},
        {"colour": "red"},
    ],
)
def test_values_the_privilege_refuses_are_422(api: ApiClient, values: dict[str, Any]) -> None:
    feature(api)
    api.error("POST", "/plans", 422, json={
        "code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
        "entitlements": [{"feature": "workspace", "values": values}],
    })  # fmt: skip
    api.error("GET", "/plans/pro", 404)


def test_an_unknown_or_repeated_feature_is_422(api: ApiClient) -> None:
    feature(api)
    base = {"code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly"}
    api.error("POST", "/plans", 422, json={**base, "entitlements": [{"feature": "nope"}]})
    twice = [{"feature": "workspace"}, {"feature": "workspace"}]
    api.error("POST", "/plans", 422, json={**base, "entitlements": twice})


def test_a_subscription_overrides_privilege_by_privilege(api: ApiClient) -> None:
    feature(api)
    feature(api, "sla", privileges=[])
    plan(api, "pro", [{"feature": "workspace", "values": {"seats": 10, "sso": False}}])
    api.customer("acme")
    sub = subscribe(api, "pro")
    view = api.ok("PUT", f"/subscriptions/{sub}/entitlements", json={"entitlements": [
        {"feature": "workspace", "values": {"sso": True, "tier": "gold"}},
        {"feature": "sla"},
    ]})  # fmt: skip
    assert view["overrides"] == [
        {"feature": "sla", "name": "Sla", "values": {}},
        {"feature": "workspace", "name": "Workspace", "values": {"sso": True, "tier": "gold"}},
    ]
    assert view["entitlements"] == [
        {"feature": "sla", "name": "Sla", "values": {}},
        {
            "feature": "workspace",
            "name": "Workspace",
            "values": {"seats": 10, "sso": True, "tier": "gold"},
        },
    ]
    assert api.ok("GET", f"/subscriptions/{sub}/entitlements") == view
    assert granted(api) == view["entitlements"]
    # Dropping one override: the plan's grant applies again.
    after = api.ok("DELETE", f"/subscriptions/{sub}/entitlements/workspace")
    assert after["entitlements"] == [
        {"feature": "sla", "name": "Sla", "values": {}},
        {"feature": "workspace", "name": "Workspace", "values": {"seats": 10, "sso": False}},
    ]
    api.error("DELETE", f"/subscriptions/{sub}/entitlements/workspace", 404)
    # PUT replaces every override.
    api.ok("PUT", f"/subscriptions/{sub}/entitlements", json={"entitlements": []})
    assert [e["feature"] for e in granted(api)] == ["workspace"]
    bad = {"entitlements": [{"feature": "workspace", "values": {"seats": "many"}}]}
    api.error("PUT", f"/subscriptions/{sub}/entitlements", 422, json=bad)
    api.error("PUT", "/subscriptions/sub_nope/entitlements", 404, json={"entitlements": []})


def test_a_customer_gets_the_merge_of_active_subscriptions(api: ApiClient) -> None:
    feature(api)
    feature(api, "sla", privileges=[])
    feature(api, "exports", privileges=[])
    plan(
        api,
        "pro",
        [{"feature": "workspace", "values": {"seats": 10, "sso": False, "tier": "gold"}}],
    )
    plan(api, "team", [
        {"feature": "workspace", "values": {"seats": 25, "sso": True, "tier": "basic"}},
        {"feature": "sla"},
    ])  # fmt: skip
    plan(api, "old", [{"feature": "exports"}])
    api.customer("acme")
    subscribe(api, "pro", startDate="2026-09-01T00:00:00Z")
    team = subscribe(api, "team", startDate="2026-10-01T00:00:00Z", endDate="2026-11-15T00:00:00Z")
    # Neither a future nor an ended subscription grants anything now.
    subscribe(api, "old", startDate="2026-12-01T00:00:00Z")
    subscribe(api, "old", startDate="2026-01-01T00:00:00Z", endDate="2026-02-01T00:00:00Z")
    assert granted(api) == [
        {"feature": "sla", "name": "Sla", "values": {}},
        # seats: the larger; sso: either; tier: the later subscription's (team).
        {
            "feature": "workspace",
            "name": "Workspace",
            "values": {"seats": 25, "sso": True, "tier": "basic"},
        },
    ]
    # An override of the later subscription takes part in the merge as its value.
    api.ok("PUT", f"/subscriptions/{team}/entitlements", json={"entitlements": [
        {"feature": "workspace", "values": {"seats": 5, "tier": "gold"}},
    ]})  # fmt: skip
    assert granted(api)[1]["values"] == {"seats": 10, "sso": True, "tier": "gold"}
    api.clock.set(api.clock.now() + timedelta(days=14))  # November 15th: "team" has ended
    assert granted(api) == [
        {
            "feature": "workspace",
            "name": "Workspace",
            "values": {"seats": 10, "sso": False, "tier": "gold"},
        }
    ]
    api.clock.set(api.clock.now() + timedelta(days=17))  # December: "old" has started
    assert [e["feature"] for e in granted(api)] == ["exports", "workspace"]
    body = api.ok("GET", "/customers/acme/entitlements")
    assert (body["customerId"], body["at"]) == ("acme", "2026-12-02T09:00:00Z")


def test_no_subscription_is_no_entitlement_and_unknown_customers_are_404(api: ApiClient) -> None:
    api.customer("acme")
    assert granted(api) == []
    api.error("GET", "/customers/nobody/entitlements", 404)


def test_patching_a_feature_keeps_valid_values_and_drops_removed_privileges(
    api: ApiClient,
) -> None:
    feature(api)
    plan(
        api, "pro", [{"feature": "workspace", "values": {"seats": 10, "sso": True, "tier": "gold"}}]
    )
    patched = api.ok("PATCH", "/features/workspace", json={
        "name": "Workspace+", "privileges": [SEATS, {**TIER, "options": ["basic", "gold", "vip"]}],
    })  # fmt: skip
    assert patched["name"] == "Workspace+"
    assert [p["code"] for p in patched["privileges"]] == ["seats", "tier"]
    assert api.ok("GET", "/plans/pro")["entitlements"] == [
        {"feature": "workspace", "name": "Workspace+", "values": {"seats": 10, "tier": "gold"}}
    ]
    # A change that the granted values would break is refused, and changes nothing.
    error = api.error("PATCH", "/features/workspace", 409, json={
        "privileges": [SEATS, {**TIER, "options": ["basic"]}],
    })  # fmt: skip
    assert "gold" in error["message"]
    assert len(api.ok("GET", "/features/workspace")["privileges"][1]["options"]) == 3
    assert api.ok("PATCH", "/features/workspace", json={"description": "d"})["description"] == "d"
    api.error("PATCH", "/features/nope", 404, json={"name": "x"})


def test_deleting_a_feature_takes_it_from_plans_and_subscriptions(api: ApiClient) -> None:
    feature(api)
    feature(api, "sla", privileges=[])
    plan(api, "pro", [{"feature": "workspace", "values": {"seats": 3}}, {"feature": "sla"}])
    api.customer("acme")
    sub = subscribe(api, "pro")
    api.ok("PUT", f"/subscriptions/{sub}/entitlements", json={"entitlements": [
        {"feature": "workspace", "values": {"seats": 4}},
    ]})  # fmt: skip
    assert api.delete("/features/workspace").status_code == 204
    api.error("GET", "/features/workspace", 404)
    assert [e["feature"] for e in api.ok("GET", "/plans/pro")["entitlements"]] == ["sla"]
    assert api.ok("GET", f"/subscriptions/{sub}/entitlements")["overrides"] == []
    assert [e["feature"] for e in granted(api)] == ["sla"]
    api.error("DELETE", "/features/workspace", 404)


def test_tenants_never_see_each_others_features_or_grants(api: ApiClient, other: ApiClient) -> None:
    feature(api)
    plan(api, "pro", [{"feature": "workspace", "values": {"seats": 3}}])
    api.customer("acme")
    sub = subscribe(api, "pro")
    other.error("GET", "/features/workspace", 404)
    assert other.ok("GET", "/features")["data"] == []
    other.error("PATCH", "/features/workspace", 404, json={"name": "x"})
    other.error("DELETE", "/features/workspace", 404)
    # The other tenant cannot grant it, nor touch or read the first tenant's grants.
    other.error("POST", "/plans", 422, json={
        "code": "pro", "name": "Pro", "currency": "USD", "interval": "monthly",
        "entitlements": [{"feature": "workspace"}],
    })  # fmt: skip
    other.error("GET", f"/subscriptions/{sub}/entitlements", 404)
    other.error("PUT", f"/subscriptions/{sub}/entitlements", 404, json={"entitlements": []})
    other.error("DELETE", f"/subscriptions/{sub}/entitlements/workspace", 404)
    other.error("GET", "/customers/acme/entitlements", 404)
    # Same codes in the other tenant are its own.
    feature(other)
    other.customer("acme")
    assert other.ok("GET", "/customers/acme/entitlements")["entitlements"] == []
    assert granted(api)[0]["values"] == {"seats": 3}
