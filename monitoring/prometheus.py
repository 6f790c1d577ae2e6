"""`GET /metrics`: Prometheus text read from the database, so every process reports the same."""

from __future__ import annotations

from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from monitoring import reports
from operations import counters


class CoordhubCollector:
    """Collect slot, operation and lifetime figures at scrape time."""

    def collect(self) -> Iterator[Metric]:
        held, total = reports.slot_usage()
        yield GaugeMetricFamily("coordhub_slots", "Configured slots.", value=total)
        yield GaugeMetricFamily("coordhub_slots_in_use", "Slots held under a live lease.", held)
        by_status = GaugeMetricFamily(
            "coordhub_operations", "Operations kept, by status.", labels=["status"]
        )
        for status, count in reports.status_counts().items():
            by_status.add_metric([status], count)
        yield by_status
        lifetime = CounterMetricFamily(
            "coordhub_events", "Lifetime slot and operation events.", labels=["event"]
        )
        for name, value in counters.snapshot().items():
            lifetime.add_metric([name], value)
        yield lifetime


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry()
    registry.register(CoordhubCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
