"""The templates' report shapes, as their clients read them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_performance_report_has_the_seeds_shape(client, start_one):
    start_one()

    body = client.get("/api/performance").json()

    assert set(body) >= {
        "rate_limiting",
        "concurrency_control",
        "resource_management",
        "system_info",
    }
    assert body["concurrency_control"]["max_concurrent_operations"] == 3
    assert body["concurrency_control"]["active_operations"] == 1
    assert body["concurrency_control"]["available_slots"] == 2
    assert body["rate_limiting"]["enabled"] is False


def test_resource_pool_metrics_have_the_seeds_shape(client, start_one):
    created = start_one()

    body = client.get("/api/resource-pool/metrics").json()

    assert set(body) == {
        "pool_configuration",
        "current_status",
        "lifetime_metrics",
        "resource_details",
    }
    assert body["pool_configuration"]["max_size"] == 3
    assert body["current_status"] == {"in_use": 1, "available": 2, "utilisation": 1 / 3}
    assert body["lifetime_metrics"]["allocations"] == 1
    held = [slot for slot in body["resource_details"] if slot["operation_id"]]
    assert [slot["operation_id"] for slot in held] == [created["id"]]


def test_performance_reports_the_poll_ladder_the_dashboard_renders(client):
    body = client.get("/api/performance").json()
    page = client.get("/").content.decode()

    ladder = body["polling"]["ladder_ms"]
    assert ladder[0] == body["polling"]["initial_interval_ms"]
    assert ladder[-1] == body["polling"]["max_interval_ms"]
    assert f'data-poll-ladder-ms="{",".join(map(str, ladder))}"' in page
