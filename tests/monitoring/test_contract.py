"""The templates' report field names and JSON types, as their Node and React clients read them.

Each contract lists a field by its path (`a.b`, `list[].field` for every element) and the
JSON type the templates gave it. A test fails when a name disappears or changes type.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from operations.maintenance import beat
from operations.models import Slot

pytestmark = pytest.mark.django_db

HEALTH = {
    "status": "string",
    "timestamp": "string",
    "active_operations": "number",
    "max_concurrent_operations": "number",
    "rate_limit": "string",
}

PERFORMANCE = {
    "rate_limiting.requests_per_minute": "number",
    "rate_limiting.enforcement": "string",
    "concurrency_control.max_concurrent": "number",
    "concurrency_control.currently_active": "number",
    "concurrency_control.active_operation_ids": "array",
    "concurrency_control.active_operation_ids[]": "string",
    "resource_management.cleanup_interval": "number",
    "resource_management.automatic_cleanup": "boolean",
    "system_info.timestamp": "string",
    "system_info.limiter_storage": "string",
    "system_info.middleware_active": "boolean",
}

RESOURCE_POOL = {
    "pool_configuration.max_resources": "number",
    "pool_configuration.cleanup_interval": "number",
    "pool_configuration.resource_timeout": "number",
    "pool_configuration.max_errors_per_resource": "number",
    "current_status.active_resources": "number",
    "current_status.total_resources": "number",
    "current_status.available_capacity": "number",
    "current_status.utilization_percentage": "number",
    "lifetime_metrics.total_allocations": "number",
    "lifetime_metrics.total_releases": "number",
    "lifetime_metrics.total_timeouts": "number",
    "lifetime_metrics.total_errors": "number",
    "lifetime_metrics.success_rate": "number",
    "resource_details": "array",
    "resource_details[].resource_id": "string",
    "resource_details[].status": "string",
    "resource_details[].allocated_at": "string|null",
    "resource_details[].age_seconds": "number",
    "resource_details[].error_count": "number",
}


def json_type(value: Any) -> str:
    """Name the JSON type of a decoded value (a bool is not a number)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def values_at(body: Any, path: str) -> list[Any]:
    """Every value at `path`; "missing" marks a name that is not there."""
    found = [body]
    for name in path.split("."):
        each = name.endswith("[]")
        name = name.removesuffix("[]")
        found = [
            value.get(name, "missing") if isinstance(value, dict) else "missing" for value in found
        ]
        if each:
            found = [
                item
                for value in found
                for item in (value if isinstance(value, list) else ["missing"])
            ]
    return found


def broken_fields(body: Any, contract: dict[str, str]) -> list[str]:
    """Describe each contract field that is missing, of another type, or never seen."""
    broken = []
    for path, expected in contract.items():
        values = values_at(body, path)
        if not values:
            broken.append(f"{path}: no element to check")
        for value in values:
            actual = "missing" if value == "missing" else json_type(value)
            if actual not in expected.split("|"):
                broken.append(f"{path}: {actual}, expected {expected}")
    return broken


def test_values_at_marks_a_missing_name_and_reaches_into_lists():
    body = {"a": {"b": [{"c": 1}, {"d": 2}]}}

    assert values_at(body, "a.b[].c") == [1, "missing"]
    assert values_at(body, "a.x") == ["missing"]
    assert broken_fields(body, {"a.b[].c": "number", "a": "string"}) == [
        "a.b[].c: missing, expected number",
        "a: object, expected string",
    ]


def test_health_has_the_templates_fields_and_types(client, start_one):
    beat("test-worker", threads=1)
    start_one()

    response = client.get("/api/health")

    body = response.json()
    assert response.status_code == 200
    assert broken_fields(body, HEALTH) == []
    assert body["active_operations"] == 1
    assert body["max_concurrent_operations"] == 3
    assert body["rate_limit"] == "rate limiting disabled"
    assert {"checks", "failed"} <= set(body)


def test_health_states_the_start_limit_as_the_templates_sentence(client, configure):
    configure(enable_rate_limiting=True, requests_per_minute=10)

    body = client.get("/api/health").json()

    assert body["rate_limit"] == "10 requests per minute per client"
    assert broken_fields(body, HEALTH) == []


def test_performance_has_the_templates_fields_and_types(client, start_one, settings):
    created = start_one()

    body = client.get("/api/performance").json()

    assert broken_fields(body, PERFORMANCE) == []
    concurrency = body["concurrency_control"]
    assert (concurrency["max_concurrent"], concurrency["currently_active"]) == (3, 1)
    assert concurrency["active_operation_ids"] == [created["id"]]
    assert body["rate_limiting"]["enforcement"] == "disabled"
    assert body["resource_management"] == body["resource_management"] | {
        "cleanup_interval": settings.COORDHUB.cleanup_interval_seconds,
        "automatic_cleanup": True,
    }
    # The PostgreSQL pass of the suite runs on Redis.
    assert body["system_info"]["limiter_storage"] == (
        "redis" if os.environ.get("REDIS_URL") else "memory"
    )
    assert body["system_info"]["middleware_active"] is False


def test_performance_reports_enforcement_while_limits_are_on(client, configure):
    configure(enable_rate_limiting=True, requests_per_minute=10)

    body = client.get("/api/performance").json()

    assert body["rate_limiting"]["requests_per_minute"] == 10
    assert body["rate_limiting"]["enforcement"] == (
        "per client: the signed-in user, else the client address (IPv6 by /64)"
    )
    assert body["system_info"]["middleware_active"] is True


def test_resource_pool_metrics_have_the_templates_fields_and_types(client, start_one, settings):
    created = start_one()
    claimed_at = Slot.objects.get(number=1).claimed_at

    body = client.get("/api/resource-pool/metrics").json()

    assert broken_fields(body, RESOURCE_POOL) == []
    assert body["pool_configuration"] == body["pool_configuration"] | {
        "max_resources": 3,
        "cleanup_interval": settings.COORDHUB.cleanup_interval_seconds,
        "resource_timeout": settings.COORDHUB.operation_timeout_seconds,
        "max_errors_per_resource": 0,
    }
    assert body["current_status"] == body["current_status"] | {
        "active_resources": 1,
        "total_resources": 3,
        "available_capacity": 2,
        "utilization_percentage": 100 / 3,
    }
    assert body["lifetime_metrics"] == body["lifetime_metrics"] | {
        "total_allocations": 1,
        "total_releases": 0,
        "total_timeouts": 0,
        "total_errors": 0,
        "success_rate": 100.0,
    }
    held, free = body["resource_details"][:2]
    assert held == held | {
        "resource_id": "slot-1",
        "status": "in_use",
        "allocated_at": claimed_at.isoformat(),
        "error_count": 0,
        "operation_id": created["id"],
    }
    assert held["age_seconds"] >= 0
    assert free == free | {
        "resource_id": "slot-2",
        "status": "available",
        "allocated_at": None,
        "age_seconds": 0,
    }
