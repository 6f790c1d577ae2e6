"""`GET /metrics`: Prometheus text from the database."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def roomy_limits(configure):
    configure(max_concurrent_operations=3, enable_rate_limiting=False, allow_anonymous=True)


def start(client):
    body = {"kind": "simulated", "params": {}}
    return client.post("/api/operations", json.dumps(body), content_type="application/json")


def test_prometheus_metrics_report_slots_and_operations(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        start(client)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "coordhub_slots 3.0" in text
    assert "coordhub_slots_in_use 1.0" in text
    assert 'coordhub_operations{status="queued"} 1.0' in text
    assert 'coordhub_events_total{event="allocations"} 1.0' in text
