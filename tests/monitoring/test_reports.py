"""The templates' report shapes, as their clients read them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone

from monitoring import reports
from operations import counters
from operations.models import Operation, Slot

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
        "line",
    }
    assert body["pool_configuration"]["max_size"] == 3
    assert body["current_status"] == body["current_status"] | {
        "in_use": 1,
        "available": 2,
        "utilisation": 1 / 3,
    }
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


def test_success_rate_is_a_percentage_and_100_before_anything_finished():
    assert reports.success_percentage(counters.snapshot()) == 100.0

    counters.add(counters.COMPLETED, 2)
    counters.add(counters.FAILED)

    assert reports.success_percentage(counters.snapshot()) == pytest.approx(200 / 3)


def test_resource_details_name_each_slot_status(client, configure):
    configure(max_concurrent_operations=2, allow_anonymous=True)
    now = timezone.now()
    Slot.objects.all().delete()
    live, lapsed = (Operation.objects.create(kind="simulated", params={}) for _ in range(2))
    Slot.objects.create(
        number=1, operation=live, claimed_at=now, lease_expires_at=now + timedelta(seconds=30)
    )
    Slot.objects.create(
        number=2,
        operation=lapsed,
        claimed_at=now - timedelta(seconds=90),
        lease_expires_at=now - timedelta(seconds=60),
    )
    Slot.objects.create(number=3)

    body = client.get("/api/resource-pool/metrics").json()

    details = body["resource_details"]
    assert [(slot["resource_id"], slot["status"]) for slot in details] == [
        ("slot-1", "in_use"),
        ("slot-2", "expired"),
        ("slot-3", "retired"),
    ]
    assert details[1]["age_seconds"] >= 90
    assert (details[2]["allocated_at"], details[2]["age_seconds"]) == (None, 0)
    assert body["current_status"]["active_resources"] == 1
    assert body["current_status"]["utilization_percentage"] == 50.0


def test_a_retired_slot_still_held_counts_among_total_resources(client, configure):
    configure(max_concurrent_operations=1, allow_anonymous=True)
    now = timezone.now()
    Slot.objects.all().delete()
    Slot.objects.create(number=1)
    Slot.objects.create(
        number=2,
        operation=Operation.objects.create(kind="simulated", params={}),
        claimed_at=now,
        lease_expires_at=now + timedelta(seconds=30),
    )

    status = client.get("/api/resource-pool/metrics").json()["current_status"]

    assert (status["total_resources"], status["active_resources"]) == (2, 1)
    assert status["utilization_percentage"] == 100.0


def test_limiter_storage_is_redis_only_for_coordhubs_redis_cache():
    memory = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=memory):
        assert reports.limiter_storage() == "memory"

    redis = {"default": {"BACKEND": "coordhub.cache.RedisCache", "LOCATION": "redis://x/0"}}
    with override_settings(CACHES=redis):
        assert reports.limiter_storage() == "redis"


def test_health_reports_no_active_count_while_the_database_does_not_answer(monkeypatch):
    def refuse(now):
        raise OperationalError("connection refused")

    monkeypatch.setattr(reports, "count_live_holders", refuse)

    assert reports.health_figures()["active_operations"] is None


def test_the_reports_and_metrics_count_the_line_by_reason_and_its_waits(client, configure):
    from operations import line, slots
    from operations.admission import admit

    configure(max_concurrent_operations=2, max_slots_per_client=1)
    holder = admit("simulated", {}, client_key="ip:a")
    admit("simulated", {}, client_key="ip:b")
    admit("simulated", {}, client_key="ip:a", when_busy="wait")  # its client is at its share
    admit("simulated", {}, client_key="ip:c", when_busy="wait")  # the pool is full
    (hold,) = slots.holds_of(holder.id)
    line.release(hold)  # to ip:c's: ip:a was served more recently than ip:c, never served

    performance = client.get("/api/performance").json()["concurrency_control"]["line"]
    pool = client.get("/api/resource-pool/metrics").json()["line"]
    metrics = client.get("/metrics").content.decode()

    assert performance == pool
    assert performance["waiting"] == 1
    assert performance["total_waits"] == 2
    assert performance["max_slots_per_client"] == 1
    assert performance["wait_seconds"]["sample_size"] == 1
    assert 0 <= performance["wait_seconds"]["p50"] == performance["wait_seconds"]["max"] < 60
    assert performance["waiting_by_reason"] == {"client_share": 1}
    assert "coordhub_waiting_operations{reason=" in metrics
    assert 'coordhub_wait_seconds{quantile="0.5"}' in metrics
