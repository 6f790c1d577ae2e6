"""`GET /metrics`: Prometheus text from the database."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_prometheus_metrics_report_slots_and_operations(client, start_one):
    start_one()

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "coordhub_slots 3.0" in text
    assert "coordhub_slots_in_use 1.0" in text
    assert 'coordhub_operations{status="queued"} 1.0' in text
    assert 'coordhub_events_total{event="allocations"} 1.0' in text
